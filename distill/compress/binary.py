"""Binary compressors: BWN weights, XNOR-Net weights and activations, binary activations alone."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from distill.compress.base import Compressor, inner_layers, per_out_channel
from distill.compress.encoding import FloatWeights
from distill.registry import COMPRESSORS


@COMPRESSORS.register("bwn", recommended={"epochs": 10, "lr": 1e-3})
class BinaryWeights(Compressor):
    """BWN (Rastegari et al. 2016): W ~ sign(W) * alpha, alpha = mean |W| per output filter; 1 bit a weight."""

    name = "bwn"
    iterative = True  # with --stages N, incremental (INQ, Zhou et al. 2017): round s binarises a share s/N
    share = 1.0  # of each layer's weights, the largest |W| first; the float rest fine-tunes to compensate

    def advance(self, net: nn.Module, stage: int, stages: int) -> None:
        self.share = stage / stages

    def effective(self, w: torch.Tensor) -> torch.Tensor:
        alpha = per_out_channel(w).abs().mean(1)
        binary = torch.where(w >= 0, 1.0, -1.0).to(w) * alpha.view(-1, *[1] * (w.dim() - 1))
        still_float = int((1 - self.share) * w.numel())  # this round's smallest |W| stay float
        if still_float == 0:
            return binary
        threshold = w.detach().abs().flatten().kthvalue(still_float).values
        return torch.where(w.abs() > threshold, binary, w)

    def encode(self, w: torch.Tensor) -> dict:
        bits = np.packbits((w.detach().cpu().numpy() >= 0).reshape(-1))  # 8 weights a byte
        alpha = per_out_channel(w.detach()).abs().mean(1).float()
        return {"bits": torch.from_numpy(bits), "alpha": alpha, "shape": torch.tensor(w.shape)}

    def decode(self, blob: dict) -> torch.Tensor:
        shape = tuple(int(s) for s in blob["shape"])
        n = int(np.prod(shape))
        signs = np.unpackbits(blob["bits"].numpy())[:n].astype(np.float32) * 2 - 1
        w = torch.from_numpy(signs).view(shape)
        return w * blob["alpha"].view(-1, *[1] * (len(shape) - 1))


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


@COMPRESSORS.register("xnor", recommended={"epochs": 10, "lr": 1e-3})
class XnorNet(BinaryWeights):
    """XNOR-Net (Rastegari et al.): binary weights and activations, BN -> sign -> conv; first/last float."""

    name = "xnor"

    def targets(self, net: nn.Module) -> list[str]:
        return [n for n in inner_layers(net) if isinstance(net.get_submodule(n), nn.Conv2d)]

    def restructure(self, net: nn.Module, names: list[str], blob: dict | None = None) -> None:
        _binary_inputs(net, names)

    def weight_path(self, name: str) -> str:
        return f"{name}.conv"


@COMPRESSORS.register("binact")
class BinaryActivations(XnorNet):
    """The papers' variant: binary activations (BN -> sign -> conv) with float weights; first/last float."""

    name = "binact"
    dense_key = "float"

    def effective(self, w: torch.Tensor) -> torch.Tensor:
        return w

    def encode(self, w: torch.Tensor) -> dict:
        return FloatWeights().encode(w)

    def decode(self, blob: dict) -> torch.Tensor:
        return FloatWeights().decode(blob)
