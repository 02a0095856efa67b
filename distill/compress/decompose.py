"""Low-rank compressors: CP decomposition of convolutions (all, or only where faster) and SVD of FC layers."""

from __future__ import annotations

import warnings

import torch
from torch import nn
from torch.nn import functional as F

from distill.compress.base import Compressor, eval_mode, example_input, inner_layers
from distill.errors import DistillError
from distill.registry import COMPRESSORS


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


@COMPRESSORS.register("cp", recommended={"epochs": 1})
class CPDecomposition(Factorisation):
    """CP decomposition (Lebedev et al.) of inner k x k convs, rank from a parameter budget (default 1/2)."""

    name = "cp"
    option = ("parameter budget", {"gt": 0, "le": 1})
    factors = CPConv

    def __init__(self, budget: float = 0.5):
        self.budget = budget

    def targets(self, net: nn.Module) -> list[str]:
        return [
            n for n in inner_layers(net) if isinstance(m := net.get_submodule(n), nn.Conv2d) and max(m.kernel_size) > 1
        ]

    def rank_for(self, conv: nn.Conv2d) -> int:
        kh, kw = conv.kernel_size
        full = conv.out_channels * conv.in_channels * kh * kw
        return max(1, int(self.budget * full / (conv.in_channels + kh + kw + conv.out_channels)))

    def decode_layer(self, state: dict, name: str, blob: dict) -> None:
        """Files from before the merged form existed run the depthwise form."""
        state.setdefault(f"{name}.merged", torch.tensor(False))


@COMPRESSORS.register("cp-fast", recommended={"epochs": 3, "lr": 1e-3})
class CPWhereFaster(CPDecomposition):
    """CP only on the layers it speeds up: each candidate conv and its rank-R factors (fused as at inference) are
    timed in turns at batch 1 on the input shape the layer sees, on this machine and at its thread count. On a
    small network at face resolution most 3x3 convs are too cheap for three kernel launches to beat one (the
    papers' CP SqueezeNet ran slower than the original); `cp` decomposes them all, for parameters rather than speed."""

    name = "cp-fast"
    margin = 0.9  # a layer is taken if its factors need at most 0.9 of its time: above the noise of the timing

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
        with eval_mode(net), torch.no_grad():
            net(example_input(net, size))
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


@COMPRESSORS.register("svd")
class LowRankFC(Factorisation):
    """Low-rank fully connected layers (Ge et al.; Denton et al.): every inner linear layer becomes two of rank R,
    R from a parameter budget (default 1/8 of the layer's weights). The first step of Ge et al.'s hybrid
    pipeline: `svd+hybrid` then prunes, shares and Huffman-codes the factors."""

    name = "svd"
    option = ("parameter budget", {"gt": 0, "le": 1})
    factors = LowRankLinear

    def __init__(self, budget: float = 0.125):
        self.budget = budget

    def targets(self, net: nn.Module) -> list[str]:
        return [n for n in inner_layers(net) if isinstance(net.get_submodule(n), nn.Linear)]

    def rank_for(self, linear: nn.Linear) -> int:
        i, o = linear.in_features, linear.out_features
        return max(1, min(i, o, int(self.budget * i * o / (i + o))))
