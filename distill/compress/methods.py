"""Registered compressors: layer wrappers used while fine-tuning, and the encoders that store them compactly.

A compressor decides which layers it takes (`targets`), wraps them so fine-tuning sees the compressed weights
(`wrap`, with straight-through gradients), and encodes/decodes a wrapped layer's effective weight for the file.
The decoded weight is exactly what the wrapped layer computed with, so a loaded model gives identical outputs.
"""

from __future__ import annotations

import contextlib
import json
import warnings
from collections.abc import Iterator

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from distill.errors import DistillError
from distill.registry import COMPRESSORS
from distill.settings import out_of_range, valid_range


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
    stages = 1  # prune -> fine-tune rounds (`advance` is called before each round's fine-tuning)
    iterative = False  # `--stages N` sets its number of rounds
    fit = True  # False: restructure gives only the shapes (a dry run of a chain, without fitting decompositions)
    size = 64  # the side of the faces the network works on (the student's preprocessing sets it)
    dense_key: str | None = None  # the blob entry holding one value per weight (what pruning can sparsify)
    sparsifies = False  # later methods of a chain may stack on the layers it took (prune+quant)
    option: tuple[str, dict] | None = None  # the one numeric option 'name:X' takes: (what it is, its valid range)

    def advance(self, net: nn.Module, stage: int, stages: int) -> None:
        """Move to round `stage` of `stages` (1-based) of an iterative schedule."""

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
    iterative = True  # with --stages N, incremental (INQ, Zhou et al. 2017): round s binarises a share s/N
    share = 1.0  # of each layer's weights, the largest |W| first; the float rest fine-tunes to compensate

    def advance(self, net: nn.Module, stage: int, stages: int) -> None:
        self.share = stage / stages

    def effective(self, w: torch.Tensor) -> torch.Tensor:
        alpha = _per_out_channel(w).abs().mean(1)
        binary = torch.where(w >= 0, 1.0, -1.0).to(w) * alpha.view(-1, *[1] * (w.dim() - 1))
        still_float = int((1 - self.share) * w.numel())  # this round's smallest |W| stay float
        if still_float == 0:
            return binary
        threshold = w.detach().abs().flatten().kthvalue(still_float).values
        return torch.where(w.abs() > threshold, binary, w)

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
    dense_key = "int8"

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
    dense_key = "float"

    def effective(self, w: torch.Tensor) -> torch.Tensor:
        return w

    def encode(self, w: torch.Tensor) -> dict:
        return FloatWeights().encode(w)

    def decode(self, blob: dict) -> torch.Tensor:
        return FloatWeights().decode(blob)


class CPConv(nn.Sequential):
    """A conv (O,I,kh,kw) as a rank-R CP sum (Lebedev et al. 2015): 1x1 I->R, kh x 1 and 1 x kw depthwise on R
    channels, 1x1 R->O (with the bias). Stride, padding and dilation split over the two depthwise convs."""

    def __init__(self, conv: nn.Conv2d, rank: int, merged: bool = False):
        (kh, kw), (sh, sw), (ph, pw), (dh, dw) = conv.kernel_size, conv.stride, conv.padding, conv.dilation
        super().__init__(
            nn.Conv2d(conv.in_channels, rank, 1, bias=False),
            nn.Conv2d(rank, rank, (kh, 1), (sh, 1), (ph, 0), (dh, 1), groups=rank, bias=False),
            nn.Conv2d(rank, rank, (1, kw), (1, sw), (0, pw), (1, dw), groups=rank, bias=False),
            nn.Conv2d(rank, conv.out_channels, 1, bias=conv.bias is not None),
        )
        self.register_buffer("merged", torch.tensor(merged))  # the inference form, saved with the factors
        self.merge = merged  # ... and as a Python bool, so an exported graph has no data-dependent branch
        self.register_load_state_dict_post_hook(lambda m, _keys: m.set_form(bool(m.merged)))

    def set_form(self, merged: bool) -> None:
        self.merged.fill_(merged)
        self.merge = merged

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Training runs the four factors. Inference fuses the two depthwise ones into one kh x kw depthwise conv
        with the rank-1 kernels outer(h, w): the same sums, one kernel launch and memory pass fewer. `merged`
        also folds the first 1x1 into it, a full conv I->R with kernels in[r,i]*h[r]*w[r]: more multiply-adds,
        one launch fewer, which wins where a layer's input is a few pixels and launches dominate."""
        if self.training:
            return super().forward(x)
        first, along_h, along_w, last = self
        kernel = along_h.weight * along_w.weight  # (R,1,kh,1) * (R,1,1,kw) -> (R,1,kh,kw)
        if self.merge:
            kernel, groups = first.weight * kernel, 1  # (R,I,1,1) * (R,1,kh,kw) -> (R,I,kh,kw)
        else:
            x, groups = first(x), kernel.shape[0]
        y = F.conv2d(
            x,
            kernel,
            stride=(along_h.stride[0], along_w.stride[1]),
            padding=(along_h.padding[0], along_w.padding[1]),
            dilation=(along_h.dilation[0], along_w.dilation[1]),
            groups=groups,
        )
        return last(y)

    def load_factors(self, conv: nn.Conv2d, n_iter_max: int = 100, tol: float = 1e-6, lean: bool | None = None) -> None:
        """CP-ALS with an SVD start: tensorly's, or (lean, the default where tensorly would form a Khatri-Rao
        product of over 2^24 numbers, as for VGG-S) the tap-by-tap ALS of `cp_als`."""
        rank = self[0].out_channels
        out_ch, in_ch, kh, kw = conv.weight.shape
        if lean is None:
            lean = out_ch * in_ch * max(kh, kw) * rank > 2**24  # tensorly's largest Khatri-Rao product
        if lean:
            from distill.compress.cp_als import cp_als_conv

            f_out, f_in, f_h, f_w = cp_als_conv(conv.weight, rank, n_iter_max, tol)
        else:
            f_out, f_in, f_h, f_w = _tensorly_parafac(conv.weight, rank, n_iter_max, tol)
        with torch.no_grad():
            self[0].weight.copy_(f_in.T.reshape(rank, -1, 1, 1))
            self[1].weight.copy_(f_h.T.reshape(rank, 1, -1, 1))
            self[2].weight.copy_(f_w.T.reshape(rank, 1, 1, -1))
            self[3].weight.copy_(f_out.reshape(-1, rank, 1, 1))
            if conv.bias is not None:
                self[3].bias.copy_(conv.bias)


def _tensorly_parafac(weight: torch.Tensor, rank: int, n_iter_max: int, tol: float) -> list[torch.Tensor]:
    """tensorly's CP-ALS; the weights are folded into the output factor."""
    import tensorly as tl
    from tensorly.decomposition import parafac

    tl.set_backend("numpy")
    with warnings.catch_warnings():  # ranks above a mode's size: tensorly pads the SVD init, as intended
        warnings.filterwarnings("ignore", message=".*n_eigenvecs.*")
        weights, factors = parafac(
            weight.detach().double().numpy(), rank, init="svd", n_iter_max=n_iter_max, tol=tol, random_state=0
        )
    factors[0] = factors[0] * weights
    return [torch.from_numpy(f.copy()) for f in factors]


class Factorisation(Compressor):
    """Replaces each target layer by a module of factors (`factors(layer, rank)`, fitted by its `load_factors`)
    that fine-tuning trains as they are; the file keeps the factors in the state and records each layer's rank."""

    factors: type[nn.Module]

    def rank_for(self, layer: nn.Module) -> int:
        raise NotImplementedError

    def configure(self, replacement: nn.Module, name: str) -> None:
        """Settings of a new factor module beyond its rank (a file's own settings are in its state)."""

    def restructure(self, net: nn.Module, names: list[str], blob: dict | None = None) -> None:
        from distill.progress import progress_bar

        fitting = blob is None and self.fit
        with progress_bar(f"{self.name}: fitting factors", len(names), enabled=fitting and bool(names)) as advance:
            for name in names:  # VGG-S's convolutions take minutes each
                parent, _, attr = name.rpartition(".")
                owner = net.get_submodule(parent) if parent else net
                layer = getattr(owner, attr)
                replacement = self.factors(layer, int(blob["rank"]) if blob else self.rank_for(layer))
                self.configure(replacement, name)
                if fitting:
                    replacement.load_factors(layer)
                setattr(owner, attr, replacement)
                advance()

    def wrap(self, net: nn.Module, names: list[str]) -> None:
        """Nothing to parametrise: the factors themselves are fine-tuned."""

    def encode_layer(self, state: dict, name: str) -> dict:
        return {"rank": torch.tensor(state[f"{name}.0.weight"].shape[0])}  # the factors stay in the state

    def decode_layer(self, state: dict, name: str, blob: dict) -> None:
        """The factors are in the state already."""


class CPDecomposition(Factorisation):
    """CP decomposition (Lebedev et al.) of inner k x k convs, rank from a parameter budget (default 1/2)."""

    name = "cp"
    option = ("parameter budget", {"gt": 0, "le": 1})
    factors = CPConv

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

    def decode_layer(self, state: dict, name: str, blob: dict) -> None:
        """Files from before the merged form existed run the depthwise form."""
        state.setdefault(f"{name}.merged", torch.tensor(False))


class CPWhereFaster(CPDecomposition):
    """CP only on the layers it speeds up: each candidate conv and its rank-R factors (fused as at inference) are
    timed in turns at batch 1 on the input shape the layer sees, on this machine and at its thread count. On a
    small network at face resolution most 3x3 convs are too cheap for three kernel launches to beat one (the
    papers' CP SqueezeNet ran 1.5x slower); `cp` decomposes them all, for parameters rather than speed."""

    name = "cp-fast"
    margin = 0.9  # a layer is taken if its factors need at most 90% of its time: timing noise is a few percent

    def __init__(self, budget: float = 0.5):
        super().__init__(budget)
        self.merged: dict[str, bool] = {}  # the inference form timed fastest, per layer taken

    def configure(self, replacement: nn.Module, name: str) -> None:
        replacement.set_form(self.merged.get(name, False))

    def targets(self, net: nn.Module) -> list[str]:
        candidates = super().targets(net)
        inputs = _layer_inputs(net, candidates, self.size)
        faster = [n for n in candidates if self._faster(n, net.get_submodule(n), inputs[n])]
        if candidates and not faster:
            raise DistillError(
                f"cp-fast: none of the {len(candidates)} k x k convs runs faster as CP factors at batch 1 on this "
                f"machine ({self.size} px, {torch.get_num_threads()} threads); `cp` decomposes them for size anyway"
            )
        return faster

    def _faster(self, name: str, conv: nn.Conv2d, x: torch.Tensor) -> bool:
        """Times the conv and both inference forms of its factors; remembers the faster form."""
        from distill.evaluate.speed import compare_latency_on

        rank = self.rank_for(conv)  # untrained factors time the same as fitted ones
        forms = {"conv": conv, "depthwise": CPConv(conv, rank).eval(), "merged": CPConv(conv, rank, True).eval()}
        ms = compare_latency_on(forms, x, rounds=7, per_round=1)
        per_round = max(1, min(20, int(2.0 / ms["conv"])))  # ~2 ms a turn: small layers need many calls
        ms = compare_latency_on(forms, x, rounds=7, per_round=per_round)
        self.merged[name] = ms["merged"] < ms["depthwise"]
        return min(ms["merged"], ms["depthwise"]) <= self.margin * ms["conv"]


def _layer_inputs(net: nn.Module, names: list[str], size: int) -> dict[str, torch.Tensor]:
    """The input each named layer sees when the network runs on one random face of `size` px."""
    seen: dict[str, torch.Tensor] = {}
    hooks = [
        net.get_submodule(n).register_forward_pre_hook(lambda _m, args, n=n: seen.setdefault(n, args[0].detach()))
        for n in names
    ]
    try:
        with _eval_mode(net), torch.no_grad():
            net(_example_input(net, size))
    finally:
        for hook in hooks:
            hook.remove()
    return seen


class LowRankLinear(nn.Sequential):
    """A linear layer (O,I) as two of rank R (Ge et al.'s low-rank FC): I -> R without bias, R -> O with it.
    At batch 1 a big FC layer is bound by reading its weights, so R(I+O) instead of I*O weights is also time."""

    def __init__(self, linear: nn.Linear, rank: int):
        super().__init__(
            nn.Linear(linear.in_features, rank, bias=False),
            nn.Linear(rank, linear.out_features, bias=linear.bias is not None),
        )

    def load_factors(self, linear: nn.Linear) -> None:
        """Truncated SVD W = U S V^T, split as (U sqrt(S)) (sqrt(S) V^T): the best rank-R fit (Eckart-Young)."""
        rank = self[0].out_features
        u, s, vh = torch.linalg.svd(linear.weight.detach().double(), full_matrices=False)
        root = s[:rank].sqrt()
        with torch.no_grad():
            self[0].weight.copy_(root[:, None] * vh[:rank])
            self[1].weight.copy_(u[:, :rank] * root)
            if linear.bias is not None:
                self[1].bias.copy_(linear.bias)


class LowRankFC(Factorisation):
    """Low-rank fully connected layers (Ge et al.; Denton et al.): every inner linear layer becomes two of rank R,
    R from a parameter budget (default 1/8 of the layer's weights). The first step of Ge et al.'s hybrid
    pipeline: `svd+hybrid` then prunes, shares and Huffman-codes the factors."""

    name = "svd"
    option = ("parameter budget", {"gt": 0, "le": 1})
    factors = LowRankLinear

    def __init__(self, budget: float = 0.125):
        if not 0 < budget <= 1:
            raise ValueError(f"parameter budget {budget} is not in (0, 1]")
        self.budget = budget

    def targets(self, net: nn.Module) -> list[str]:
        return [n for n in _inner_layers(net) if isinstance(net.get_submodule(n), nn.Linear)]

    def rank_for(self, linear: nn.Linear) -> int:
        i, o = linear.in_features, linear.out_features
        return max(1, min(i, o, int(self.budget * i * o / (i + o))))


class MagnitudePruning(Compressor):
    """Unstructured magnitude pruning: the smallest |W| of each layer are zero, the file stores a bit mask and
    the surviving values. The sparsity grows over `stages` prune -> fine-tune rounds on Zhu & Gupta's cubic
    schedule; the mask follows the latent weights (pruned weights get straight-through gradients and may return
    while the rounds go on)."""

    name = "prune"
    option = ("sparsity", {"gt": 0, "lt": 1})
    stages = 3
    iterative = True
    sparsifies = True

    def __init__(self, sparsity: float = 0.5):
        if not 0 < sparsity < 1:
            raise ValueError(f"sparsity {sparsity} is not in (0, 1)")
        self.sparsity, self.now = sparsity, sparsity

    def advance(self, net: nn.Module, stage: int, stages: int) -> None:
        self.now = self.sparsity * (1 - (1 - stage / stages) ** 3)

    def effective(self, w: torch.Tensor) -> torch.Tensor:
        k = int(self.now * w.numel())
        if k == 0:
            return w
        threshold = w.detach().abs().flatten().kthvalue(k).values
        return w * (w.abs() > threshold)

    def encode(self, w: torch.Tensor) -> dict:
        return Sparse(FloatWeights()).encode(w)

    def decode(self, blob: dict) -> torch.Tensor:
        return Sparse(FloatWeights()).decode(blob)


class FloatWeights(Compressor):
    """Plain float32 weights (what a pruned layer's survivors are stored as when nothing else encodes them)."""

    dense_key = "float"

    def encode(self, w: torch.Tensor) -> dict:
        return {"float": w.detach().cpu().float()}

    def decode(self, blob: dict) -> torch.Tensor:
        return blob["float"]


def kmeans_1d(values: torch.Tensor, k: int, iters: int = 25) -> torch.Tensor:
    """Sorted centroids of 1-D k-means with linear initialisation over [min, max] (Han et al. found it best
    for weight sharing). Hand-written: torch has no k-means and 1-D Lloyd steps are a few lines."""
    centroids = torch.linspace(float(values.min()), float(values.max()), k, dtype=values.dtype)
    for _ in range(iters):
        assign = torch.bucketize(values, (centroids[1:] + centroids[:-1]) / 2)
        sums = torch.zeros(k, dtype=values.dtype).index_add_(0, assign, values)
        counts = torch.zeros(k, dtype=values.dtype).index_add_(0, assign, torch.ones_like(values))
        centroids = torch.where(counts > 0, sums / counts.clamp_min(1), centroids).sort().values
    return centroids


def nearest(w: torch.Tensor, centroids: torch.Tensor) -> torch.Tensor:
    """Each non-zero weight replaced by its nearest centroid; zeros (pruned weights) stay zero."""
    shared = centroids[torch.bucketize(w, (centroids[1:] + centroids[:-1]) / 2)]
    return torch.where(w == 0, torch.zeros_like(w), shared)


class Hybrid(MagnitudePruning):
    """Deep Compression (Han et al.) / Ge et al.'s hybrid, in one method: magnitude pruning over the first
    rounds, then weight sharing (per-layer k-means codebook of 2^bits values) fine-tuned in the last round; the
    file holds each layer's codebook plus Huffman-coded (dahuffman) codes and gaps between surviving weights."""

    name = "hybrid"
    stages = 4  # 3 prune -> fine-tune rounds, then share -> fine-tune
    sparsifies = False  # its layers are fully encoded: nothing stacks on them

    def __init__(self, sparsity: float = 0.8, bits: int = 6):
        super().__init__(sparsity)
        self.bits, self.books = bits, {}

    def advance(self, net: nn.Module, stage: int, stages: int) -> None:
        prune_rounds = max(1, stages - 1)
        super().advance(net, min(stage, prune_rounds), prune_rounds)
        if stage == stages:  # the codebooks are fitted to the pruned weights, then stay fixed
            for name, book in self.books.items():
                w = net.get_submodule(name).parametrizations.weight.original.detach()
                kept = self.effective(w)
                centroids = kmeans_1d(kept[kept != 0].flatten(), 2**self.bits)
                book.resize_(len(centroids)).copy_(centroids)  # in place: the layer's transform holds this tensor

    def wrap(self, net: nn.Module, names: list[str]) -> None:
        from torch.nn.utils import parametrize

        for name in names:
            book = self.books[name] = torch.empty(0)
            transform = WeightTransform(lambda w, book=book: self._shared(w, book))
            parametrize.register_parametrization(net.get_submodule(name), "weight", transform)

    def _shared(self, w: torch.Tensor, book: torch.Tensor) -> torch.Tensor:
        pruned = self.effective(w)
        return nearest(pruned, book) if book.numel() else pruned

    def encode(self, w: torch.Tensor) -> dict:
        flat = w.detach().cpu().float().flatten()
        where = torch.nonzero(flat).flatten()
        book = torch.unique(flat[where])  # sorted: the codebook the layer computes with
        gaps = torch.diff(where, prepend=torch.tensor([-1])) - 1  # zeros between survivors (relative indices)
        codes = torch.searchsorted(book, flat[where])
        return {"book": book, "shape": torch.tensor(w.shape), **huffman("codes", codes), **huffman("gaps", gaps)}

    def decode(self, blob: dict) -> torch.Tensor:
        shape = tuple(int(s) for s in blob["shape"])
        codes, gaps = unhuffman("codes", blob), unhuffman("gaps", blob)
        flat = torch.zeros(int(np.prod(shape)))
        flat[torch.cumsum(gaps + 1, 0) - 1] = blob["book"][codes]
        return flat.view(shape)


def huffman(prefix: str, symbols: torch.Tensor) -> dict:
    """Huffman-code non-negative integers with dahuffman; the code table is stored as tensors (weights_only)."""
    from dahuffman import HuffmanCodec
    from dahuffman.huffmancodec import _EOF

    values = symbols.tolist()
    codec = HuffmanCodec.from_data(values)
    table = codec.get_code_table()
    return {
        f"{prefix}_bytes": torch.frombuffer(bytearray(codec.encode(values)) or bytearray(1), dtype=torch.uint8),
        f"{prefix}_symbols": torch.tensor([-1 if s is _EOF else int(s) for s in table], dtype=torch.int64),
        f"{prefix}_table": torch.tensor(list(table.values()), dtype=torch.int64).reshape(-1, 2),  # (bits, code)
    }


def unhuffman(prefix: str, blob: dict) -> torch.Tensor:
    from dahuffman import HuffmanCodec
    from dahuffman.huffmancodec import _EOF

    symbols = [_EOF if s == -1 else s for s in blob[f"{prefix}_symbols"].tolist()]
    codec = HuffmanCodec(dict(zip(symbols, map(tuple, blob[f"{prefix}_table"].tolist()), strict=True)))
    return torch.tensor(codec.decode(bytes(blob[f"{prefix}_bytes"].numpy())), dtype=torch.int64)


class Sparse(Compressor):
    """A pruned layer whose surviving values another method encodes (prune+quant): mask bits + those values."""

    def __init__(self, inner: Compressor):
        self.inner = inner

    def encode(self, w: torch.Tensor) -> dict:
        blob = self.inner.encode(w)
        dense = blob.pop(self.inner.dense_key)
        mask = w.detach().cpu().flatten() != 0  # the pruned positions (an encoder's zero code need not be one)
        blob["sparse_values"] = dense.flatten()[mask]
        blob["mask"] = torch.from_numpy(np.packbits(mask.numpy()))
        blob["dense_shape"] = torch.tensor(dense.shape)
        return blob

    def decode(self, blob: dict) -> torch.Tensor:
        blob = dict(blob)
        shape = tuple(int(s) for s in blob.pop("dense_shape"))
        n = int(np.prod(shape))
        mask = torch.from_numpy(np.unpackbits(blob.pop("mask").numpy())[:n].astype(bool))
        values = blob.pop("sparse_values")
        dense = torch.zeros(n, dtype=values.dtype)
        dense[mask] = values
        blob[self.inner.dense_key] = dense.view(shape)
        return self.inner.decode(blob)


def _hash_of(shape: tuple[int, ...], buckets: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(bucket index, sign) of every weight position: fixed by the seed, so never stored."""
    gen = torch.Generator().manual_seed(seed)
    idx = torch.randint(buckets, shape, generator=gen)
    return idx, torch.randint(2, shape, generator=gen).float() * 2 - 1


class HashedWeight(nn.Module):
    """HashedNets (Chen et al. 2015): a layer's weight read from K shared, learned buckets through a fixed hash
    of each position, with a hashed sign."""

    def __init__(self, w: torch.Tensor, buckets: int, seed: int):
        super().__init__()
        idx, sign = _hash_of(tuple(w.shape), buckets, seed)
        self.register_buffer("idx", idx, persistent=False)
        self.register_buffer("sign", sign, persistent=False)
        # each bucket starts at the mean of the (sign-corrected) weights hashed into it
        flat = idx.flatten()
        total = torch.zeros(buckets).index_add_(0, flat, (w.detach() * sign).flatten())
        count = torch.zeros(buckets).index_add_(0, flat, torch.ones(w.numel()))
        self.buckets = nn.Parameter(total / count.clamp_min(1))

    def forward(self, _latent: torch.Tensor) -> torch.Tensor:
        return self.buckets[self.idx] * self.sign


class HashedNets(Compressor):
    """HashedNets on the inner layers: each keeps `ratio` of its weights' count as shared buckets (the papers
    used 1/8). Stored: the buckets (float32); the hash comes from a per-layer seed."""

    name = "hash"
    option = ("bucket ratio", {"gt": 0, "le": 1})

    def __init__(self, ratio: float = 1 / 8):
        if not 0 < ratio < 1:
            raise ValueError(f"bucket ratio {ratio} is not in (0, 1)")
        self.ratio = ratio

    def restructure(self, net: nn.Module, names: list[str], blob: dict | None = None) -> None:
        """Before fine-tuning: hash each layer's weight into its buckets (a loaded file needs nothing here)."""
        from torch.nn.utils import parametrize

        if blob is not None:
            return
        for name in names:
            layer = net.get_submodule(name)
            k = max(1, round(self.ratio * layer.weight.numel()))
            parametrize.register_parametrization(
                layer, "weight", HashedWeight(layer.weight, k, _seed_of(name)), unsafe=True
            )
            layer.parametrizations.weight.original.requires_grad_(False)  # only the buckets learn

    def wrap(self, net: nn.Module, names: list[str]) -> None:
        """restructure already put the buckets in place."""

    def encode_layer(self, state: dict, name: str) -> dict:
        """The buckets, read back exactly from the baked weight (weight = buckets[idx] * sign)."""
        w = state.pop(f"{name}.weight")
        k = max(1, round(self.ratio * w.numel()))
        idx, sign = _hash_of(tuple(w.shape), k, _seed_of(name))
        buckets = torch.zeros(k).index_copy_(0, idx.flatten(), (w * sign).flatten().float())
        return {"buckets": buckets, "seed": torch.tensor(_seed_of(name)), "shape": torch.tensor(w.shape)}

    def decode(self, blob: dict) -> torch.Tensor:
        shape = tuple(int(s) for s in blob["shape"])
        idx, sign = _hash_of(shape, blob["buckets"].numel(), int(blob["seed"]))
        return blob["buckets"][idx] * sign


class ChannelPruning(Compressor):
    """Structured pruning (torch-pruning): whole channels of the lowest L2 norm go, with everything coupled to
    them (BN, the next layer's inputs, concatenations, residual sums), so the network is physically smaller and
    faster. `ratio` of each layer's channels goes over `stages` prune -> fine-tune rounds; the classifier stays.
    The file stores each conv's remaining width; loading prunes a fresh network to those widths and loads the
    weights into it."""

    name = "prune-ch"
    option = ("channel ratio", {"gt": 0, "lt": 1})
    stages = 3
    iterative = True

    def __init__(self, ratio: float = 0.5):
        if not 0 < ratio < 1:
            raise ValueError(f"channel ratio {ratio} is not in (0, 1)")
        self.ratio, self.pruner, self.done = ratio, None, 0

    def targets(self, net: nn.Module) -> list[str]:
        return [""]  # the whole network

    def advance(self, net: nn.Module, stage: int, stages: int) -> None:
        import torch_pruning as tp

        with _eval_mode(net):
            if self.pruner is None:
                self.pruner = tp.pruner.BasePruner(
                    net,
                    _example_input(net, self.size),
                    importance=tp.importance.GroupMagnitudeImportance(p=2),
                    pruning_ratio=self.ratio,
                    iterative_steps=stages,
                    ignored_layers=[net.get_submodule(_convs(net)[-1])],
                )
            while self.done < stage:  # the pruner's own linear schedule, one step a round
                self.pruner.step()
                self.done += 1

    def restructure(self, net: nn.Module, names: list[str], blob: dict | None = None) -> None:
        """For a loaded file: prune a fresh network to the stored widths (which channels does not matter: the
        stored weights replace them all)."""
        if blob is None:
            return
        import torch_pruning as tp

        widths = json.loads(blob["widths"])
        with _eval_mode(net):
            graph = tp.DependencyGraph().build_dependency(net, example_inputs=_example_input(net))
            for name in _convs(net):
                layer = net.get_submodule(name)
                now = layer.out_channels if isinstance(layer, nn.Conv2d) else layer.out_features
                if widths[name] < now:
                    fn = tp.prune_conv_out_channels if isinstance(layer, nn.Conv2d) else tp.prune_linear_out_channels
                    graph.get_pruning_group(layer, fn, idxs=list(range(widths[name], now))).prune()

    def wrap(self, net: nn.Module, names: list[str]) -> None:
        """Nothing to parametrise: the pruned layers are plain layers."""

    def encode_layer(self, state: dict, name: str) -> dict:
        widths = {k[: -len(".weight")]: int(v.shape[0]) for k, v in state.items() if k.endswith(".weight")}
        return {"widths": json.dumps(widths)}

    def decode_layer(self, state: dict, name: str, blob: dict) -> None:
        """The weights are in the state already."""


@contextlib.contextmanager
def _eval_mode(net: nn.Module) -> Iterator[None]:
    """Tracing a network for its dependency graph must not move BatchNorm statistics."""
    was = net.training
    net.eval()
    try:
        yield
    finally:
        net.train(was)


def _example_input(net: nn.Module, size: int = 64) -> torch.Tensor:
    first = net.get_submodule(_convs(net)[0])
    return torch.rand(1, first.in_channels, size, size)


def _seed_of(name: str) -> int:
    """A stable per-layer hash seed (Python's hash() changes between runs)."""
    import zlib

    return zlib.crc32(name.encode())


for _cls in (
    BinaryWeights,
    Int8Weights,
    XnorNet,
    BinaryActivations,
    CPDecomposition,
    CPWhereFaster,
    LowRankFC,
    MagnitudePruning,
    ChannelPruning,
    HashedNets,
    Hybrid,
):
    COMPRESSORS.register(_cls.name)(_cls)


def make_compressor(method: str) -> Compressor:
    """'cp' or 'cp:0.3' (a method's one numeric option, e.g. CP's parameter budget) -> a compressor;
    'prune:0.8|quant' is a layer that pruning sparsified and quant encodes."""
    if "|" in method:
        return Sparse(make_compressor(method.rpartition("|")[2]))
    name, _, arg = method.partition(":")
    cls = COMPRESSORS.get(name)
    if not arg:
        return cls()
    if cls.option is None:
        raise DistillError(f"compressor '{name}' takes no option (given '{method}')")
    what, valid = cls.option
    try:
        value = float(arg)
    except ValueError as err:
        raise DistillError(f"{method}: the {what} '{arg}' is not a number") from err
    if out_of_range(value, valid):
        raise DistillError(f"{method}: the {what} must be {valid_range(valid)}")
    return cls(value)
