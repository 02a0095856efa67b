"""The compressor contract and the layer helpers every family shares.

A compressor decides which layers it takes (`targets`), wraps them so fine-tuning sees the compressed weights
(`wrap`, with straight-through gradients), and encodes/decodes a wrapped layer's effective weight for the file.
The decoded weight is exactly what the wrapped layer computed with, so a loaded model gives identical outputs.
Families: binary.py (bwn, xnor, binact), decompose.py (cp, cp-fast, svd), prune.py (prune, prune-ch),
quantize.py (quant, hybrid, hash); encoding.py stores weights (float, sparse, Huffman).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn


def convs(net: nn.Module) -> list[str]:
    return [n for n, m in net.named_modules() if isinstance(m, nn.Conv2d | nn.Linear)]


def inner_layers(net: nn.Module) -> list[str]:
    """Every conv/linear but the first and the last: the papers keep those in float (they are tiny and
    binarising them costs the most accuracy)."""
    names = convs(net)
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
        return inner_layers(net)

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


def per_out_channel(w: torch.Tensor) -> torch.Tensor:
    """(O, ...) -> (O, 1, ...) view helper for per-filter statistics."""
    return w.reshape(w.shape[0], -1)


@contextlib.contextmanager
def eval_mode(net: nn.Module) -> Iterator[None]:
    """Tracing a network for its dependency graph must not move BatchNorm statistics."""
    was = net.training
    net.eval()
    try:
        yield
    finally:
        net.train(was)


def example_input(net: nn.Module, size: int = 64) -> torch.Tensor:
    first = net.get_submodule(convs(net)[0])
    return torch.rand(1, first.in_channels, size, size)


def seed_of(name: str) -> int:
    """A stable per-layer hash seed (Python's hash() changes between runs)."""
    import zlib

    return zlib.crc32(name.encode())
