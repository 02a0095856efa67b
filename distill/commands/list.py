"""`distill list`: the registered teachers, students, losses, compressors, datasets and detectors."""

from __future__ import annotations

from distill.registry import listing


def run(kind: str | None = None) -> str:
    """The listing of one kind, or of every kind."""
    return listing(kind)
