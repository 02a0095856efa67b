"""Registered compressors: layer wrappers used while fine-tuning, and the encoders that store them compactly.

A compressor decides which layers it takes (`targets`), wraps them so fine-tuning sees the compressed weights
(`wrap`, with straight-through gradients), and encodes/decodes a wrapped layer's effective weight for the file.
The decoded weight is exactly what the wrapped layer computed with, so a loaded model gives identical outputs.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from distill.errors import DistillError
from distill.registry import COMPRESSORS


def _convs(net: nn.Module) -> list[str]:
    return [n for n, m in net.named_modules() if isinstance(m, nn.Conv2d | nn.Linear)]


def _inner_layers(net: nn.Module) -> list[str]:
    """Every conv/linear but the first and the last: the papers keep those in float (they are tiny and
    binarising them costs the most accuracy)."""
    names = _convs(net)
    return names[1:-1]


class WeightTransform(nn.Module):
    """Parametrisation (torch.nn.utils.parametrize) replacing a layer's weight by its compressed version in the
    forward pass; gradients pass straight through to the latent float weight."""

    def __init__(self, encode_decode):
        super().__init__()
        self.encode_decode = encode_decode

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        return w + (self.encode_decode(w) - w).detach()  # straight-through estimator


class Compressor:
    name = ""

    def targets(self, net: nn.Module) -> list[str]:
        return _inner_layers(net)

    def restructure(self, net: nn.Module, names: list[str], blob: dict | None = None) -> None:
        """Structural change of the named layers: before fine-tuning, and when a file is loaded (with the
        layer's stored blob)."""

    def weight_path(self, name: str) -> str:
        """Where the compressed weight of layer `name` lives after restructure."""
        return name

    def encode_layer(self, state: dict, name: str) -> dict:
        """Move layer `name`'s weight out of a plain state dict into its encoded blob."""
        return self.encode(state.pop(f"{self.weight_path(name)}.weight"))

    def decode_layer(self, state: dict, name: str, blob: dict) -> None:
        state[f"{self.weight_path(name)}.weight"] = self.decode(blob)

    def effective(self, w: torch.Tensor) -> torch.Tensor:
        """The weight the compressed layer computes with (differentiable only through the STE wrapper)."""
        raise NotImplementedError

    def encode(self, w: torch.Tensor) -> dict:
        raise NotImplementedError

    def decode(self, blob: dict) -> torch.Tensor:
        raise NotImplementedError

    def wrap(self, net: nn.Module, names: list[str]) -> None:
        """Parametrise the named layers in place, so training sees (and learns through) compressed weights."""
        from torch.nn.utils import parametrize

        for name in names:
            layer = net.get_submodule(self.weight_path(name))
            parametrize.register_parametrization(layer, "weight", WeightTransform(self.effective))


def _per_out_channel(w: torch.Tensor) -> torch.Tensor:
    """(O, ...) -> (O, 1, ...) view helper for per-filter statistics."""
    return w.reshape(w.shape[0], -1)


class BinaryWeights(Compressor):
    """BWN (Rastegari et al. 2016): W ~ sign(W) * alpha, alpha = mean |W| per output filter; 1 bit a weight."""

    name = "bwn"

    def effective(self, w: torch.Tensor) -> torch.Tensor:
        alpha = _per_out_channel(w).abs().mean(1)
        return torch.where(w >= 0, 1.0, -1.0).to(w) * alpha.view(-1, *[1] * (w.dim() - 1))

    def encode(self, w: torch.Tensor) -> dict:
        bits = np.packbits((w.detach().cpu().numpy() >= 0).reshape(-1))  # 8 weights a byte
        alpha = _per_out_channel(w.detach()).abs().mean(1).float()
        return {"bits": torch.from_numpy(bits), "alpha": alpha, "shape": torch.tensor(w.shape)}

    def decode(self, blob: dict) -> torch.Tensor:
        shape = tuple(int(s) for s in blob["shape"])
        n = int(np.prod(shape))
        signs = np.unpackbits(blob["bits"].numpy())[:n].astype(np.float32) * 2 - 1
        w = torch.from_numpy(signs).view(shape)
        return w * blob["alpha"].view(-1, *[1] * (len(shape) - 1))


class Int8Weights(Compressor):
    """Symmetric per-output-channel int8 weights (scale = max|W| / 127); every conv/linear, 4x smaller."""

    name = "quant"

    def targets(self, net: nn.Module) -> list[str]:
        return _convs(net)

    @staticmethod
    def _scale(w: torch.Tensor) -> torch.Tensor:
        return (_per_out_channel(w).abs().amax(1) / 127).clamp_min(1e-12).view(-1, *[1] * (w.dim() - 1))

    def effective(self, w: torch.Tensor) -> torch.Tensor:
        scale = self._scale(w)
        return (w / scale).round().clamp(-127, 127) * scale

    def encode(self, w: torch.Tensor) -> dict:
        w = w.detach().cpu()
        scale = self._scale(w)
        q = (w / scale).round().clamp(-127, 127).to(torch.int8)
        return {"int8": q, "scale": scale.flatten().float()}

    def decode(self, blob: dict) -> torch.Tensor:
        q = blob["int8"]
        return q.float() * blob["scale"].view(-1, *[1] * (q.dim() - 1))


class SignSTE(torch.autograd.Function):
    """sign(x) forward; gradient passed where |x| <= 1 (the hard-tanh straight-through estimator)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.where(x >= 0, 1.0, -1.0).to(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * (x.abs() <= 1).to(grad)


class BinaryInputConv(nn.Module):
    """XNOR-Net's block order: BN -> binary activation (sign * K) -> conv. K is the mean |x| over channels at
    each position (XNOR-Net also averages K over the kernel window; per position keeps the same role)."""

    def __init__(self, conv: nn.Conv2d):
        super().__init__()
        self.bn = nn.BatchNorm2d(conv.in_channels)
        self.conv = conv

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn(x)
        k = x.abs().mean(1, keepdim=True)  # (B,1,H,W)
        return self.conv(SignSTE.apply(x) * k)


def _binary_inputs(net: nn.Module, names: list[str]) -> None:
    for name in names:
        parent, _, attr = name.rpartition(".")
        owner = net.get_submodule(parent) if parent else net
        setattr(owner, attr, BinaryInputConv(getattr(owner, attr)))


class XnorNet(BinaryWeights):
    """XNOR-Net (Rastegari et al.): binary weights and activations, BN -> sign -> conv; first/last float."""

    name = "xnor"

    def targets(self, net: nn.Module) -> list[str]:
        return [n for n in _inner_layers(net) if isinstance(net.get_submodule(n), nn.Conv2d)]

    def restructure(self, net: nn.Module, names: list[str], blob: dict | None = None) -> None:
        _binary_inputs(net, names)

    def weight_path(self, name: str) -> str:
        return f"{name}.conv"


class BinaryActivations(XnorNet):
    """The papers' variant: binary activations (BN -> sign -> conv) with float weights; first/last float."""

    name = "binact"

    def effective(self, w: torch.Tensor) -> torch.Tensor:
        return w

    def encode(self, w: torch.Tensor) -> dict:
        return {"float": w.detach().cpu().float()}

    def decode(self, blob: dict) -> torch.Tensor:
        return blob["float"]


class CPConv(nn.Sequential):
    """A conv (O,I,kh,kw) as a rank-R CP sum (Lebedev et al. 2015): 1x1 I->R, kh x 1 and 1 x kw depthwise on R
    channels, 1x1 R->O (with the bias). Stride, padding and dilation split over the two depthwise convs."""

    def __init__(self, conv: nn.Conv2d, rank: int):
        (kh, kw), (sh, sw), (ph, pw), (dh, dw) = conv.kernel_size, conv.stride, conv.padding, conv.dilation
        super().__init__(
            nn.Conv2d(conv.in_channels, rank, 1, bias=False),
            nn.Conv2d(rank, rank, (kh, 1), (sh, 1), (ph, 0), (dh, 1), groups=rank, bias=False),
            nn.Conv2d(rank, rank, (1, kw), (1, sw), (0, pw), (1, dw), groups=rank, bias=False),
            nn.Conv2d(rank, conv.out_channels, 1, bias=conv.bias is not None),
        )

    def load_factors(self, conv: nn.Conv2d, n_iter_max: int = 100, tol: float = 1e-6) -> None:
        import tensorly as tl
        from tensorly.decomposition import parafac

        rank = self[0].out_channels
        w = conv.weight.detach().double().numpy()
        tl.set_backend("numpy")
        weights, (f_out, f_in, f_h, f_w) = parafac(w, rank, init="svd", n_iter_max=n_iter_max, tol=tol, random_state=0)
        with torch.no_grad():
            self[0].weight.copy_(torch.from_numpy(f_in.T.copy()).view(rank, -1, 1, 1))
            self[1].weight.copy_(torch.from_numpy(f_h.T.copy()).view(rank, 1, -1, 1))
            self[2].weight.copy_(torch.from_numpy(f_w.T.copy()).view(rank, 1, 1, -1))
            self[3].weight.copy_(torch.from_numpy((f_out * weights).copy()).view(-1, rank, 1, 1))
            if conv.bias is not None:
                self[3].bias.copy_(conv.bias)


class CPDecomposition(Compressor):
    """CP decomposition (Lebedev et al.) of inner k x k convs, rank from a parameter budget (default 1/2)."""

    name = "cp"

    def __init__(self, budget: float = 0.5):
        self.budget = budget

    def targets(self, net: nn.Module) -> list[str]:
        return [
            n for n in _inner_layers(net) if isinstance(m := net.get_submodule(n), nn.Conv2d) and max(m.kernel_size) > 1
        ]

    def rank_for(self, conv: nn.Conv2d) -> int:
        kh, kw = conv.kernel_size
        full = conv.out_channels * conv.in_channels * kh * kw
        return max(1, int(self.budget * full / (conv.in_channels + kh + kw + conv.out_channels)))

    def restructure(self, net: nn.Module, names: list[str], blob: dict | None = None) -> None:
        for name in names:
            parent, _, attr = name.rpartition(".")
            owner = net.get_submodule(parent) if parent else net
            conv = getattr(owner, attr)
            layer = CPConv(conv, int(blob["rank"]) if blob else self.rank_for(conv))
            if blob is None:
                layer.load_factors(conv)
            setattr(owner, attr, layer)

    def wrap(self, net: nn.Module, names: list[str]) -> None:
        """Nothing to parametrise: the factors themselves are fine-tuned."""

    def encode_layer(self, state: dict, name: str) -> dict:
        return {"rank": torch.tensor(state[f"{name}.0.weight"].shape[0])}  # the factors stay in the state

    def decode_layer(self, state: dict, name: str, blob: dict) -> None:
        """The factors are in the state already."""


for _cls in (BinaryWeights, Int8Weights, XnorNet, BinaryActivations, CPDecomposition):
    COMPRESSORS.register(_cls.name)(_cls)


def make_compressor(method: str) -> Compressor:
    """'cp' or 'cp:0.3' (a method's one numeric option, e.g. CP's parameter budget) -> a compressor."""
    name, _, arg = method.partition(":")
    cls = COMPRESSORS.get(name)
    try:
        return cls(float(arg)) if arg else cls()
    except (TypeError, ValueError) as err:
        raise DistillError(f"compressor '{name}' does not take the option '{arg}'") from err
