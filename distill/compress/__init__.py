"""Compression of trained students: each registered compressor wraps layers for fine-tuning from the posterior
cache and encodes them into a file whose bytes reflect the compression (see artifact.py)."""

from distill.compress import binary, decompose, prune, quantize  # noqa: F401  (register the compressors)
