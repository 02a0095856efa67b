"""How compressed weights are stored: plain float, sparse (mask bits + survivors), Huffman codes."""

from __future__ import annotations

import numpy as np
import torch

from distill.compress.base import Compressor


class FloatWeights(Compressor):
    """Plain float32 weights (what a pruned layer's survivors are stored as when nothing else encodes them)."""

    dense_key = "float"

    def encode(self, w: torch.Tensor) -> dict:
        return {"float": w.detach().cpu().float()}

    def decode(self, blob: dict) -> torch.Tensor:
        return blob["float"]


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
