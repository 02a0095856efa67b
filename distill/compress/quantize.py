"""Quantisation: int8 weights, weight sharing (hybrid: prune + k-means + Huffman) and HashedNets buckets."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from distill.compress.base import Compressor, WeightTransform, convs, per_out_channel, seed_of
from distill.compress.encoding import huffman, unhuffman
from distill.compress.prune import MagnitudePruning
from distill.registry import COMPRESSORS


@COMPRESSORS.register("quant", recommended={"epochs": 1})
class Int8Weights(Compressor):
    """Symmetric per-output-channel int8 weights (scale = max|W| / 127) of every conv/linear: a quarter of the bytes."""

    name = "quant"
    dense_key = "int8"

    def targets(self, net: nn.Module) -> list[str]:
        return convs(net)

    @staticmethod
    def _scale(w: torch.Tensor) -> torch.Tensor:
        return (per_out_channel(w).abs().amax(1) / 127).clamp_min(1e-12).view(-1, *[1] * (w.dim() - 1))

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


@COMPRESSORS.register("hybrid")
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


@COMPRESSORS.register("hash", recommended={"epochs": 10, "lr": 1e-3})
class HashedNets(Compressor):
    """HashedNets on the inner layers: each keeps `ratio` of its weights' count as shared buckets (the papers
    used 1/8). Stored: the buckets (float32); the hash comes from a per-layer seed."""

    name = "hash"
    option = ("bucket ratio", {"gt": 0, "le": 1})

    def __init__(self, ratio: float = 1 / 8):
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
                layer, "weight", HashedWeight(layer.weight, k, seed_of(name)), unsafe=True
            )
            layer.parametrizations.weight.original.requires_grad_(False)  # only the buckets learn

    def wrap(self, net: nn.Module, names: list[str]) -> None:
        """restructure already put the buckets in place."""

    def encode_layer(self, state: dict, name: str) -> dict:
        """The buckets, read back exactly from the baked weight (weight = buckets[idx] * sign)."""
        w = state.pop(f"{name}.weight")
        k = max(1, round(self.ratio * w.numel()))
        idx, sign = _hash_of(tuple(w.shape), k, seed_of(name))
        buckets = torch.zeros(k).index_copy_(0, idx.flatten(), (w * sign).flatten().float())
        return {"buckets": buckets, "seed": torch.tensor(seed_of(name)), "shape": torch.tensor(w.shape)}

    def decode(self, blob: dict) -> torch.Tensor:
        shape = tuple(int(s) for s in blob["shape"])
        idx, sign = _hash_of(shape, blob["buckets"].numel(), int(blob["seed"]))
        return blob["buckets"][idx] * sign
