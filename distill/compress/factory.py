"""Compressors made from their method strings, including a pruned layer that another method encodes."""

from __future__ import annotations

from distill.compress.base import Compressor
from distill.compress.encoding import Sparse
from distill.registry import COMPRESSORS
from distill.specs import MethodSpec


def make_compressor(method: str) -> Compressor:
    """'cp' or 'cp:0.3' (a method's one numeric option, e.g. CP's parameter budget) -> a compressor;
    'prune:0.8|quant' is a layer that pruning sparsified and quant encodes."""
    if "|" in method:
        return Sparse(make_compressor(method.rpartition("|")[2]))
    parsed = MethodSpec.parse(method)
    cls = COMPRESSORS.get(parsed.name)
    return cls() if parsed.value is None else cls(parsed.value)
