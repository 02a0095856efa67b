"""How every artefact records where it came from: its command, inputs and versions, and the names of its sources.
Nothing heavy is imported here: every layer may use it."""

from __future__ import annotations

import datetime as dt
import platform
import sys
from pathlib import Path


def store_name(src: Path) -> str:
    """'data/faces-unlabeled/images' -> 'faces-unlabeled': generic leaf names take their parent's name."""
    path = src.resolve() if src.exists() else src
    return path.parent.name if path.name.lower() in ("images", "imgs", "photos", "img", "data") else path.name


def provenance(command: str, **inputs: object) -> dict:
    """What every artefact records about how it was made."""
    from distill import __version__

    try:
        import torch

        torch_version = str(torch.__version__)  # a plain str: TorchVersion is not weights_only-loadable
    except ImportError:  # pragma: no cover
        torch_version = None
    return {
        "command": command,
        "argv": sys.argv,
        "inputs": inputs,
        "distill_version": __version__,
        "torch_version": torch_version,
        "python": platform.python_version(),
        "host": platform.node(),
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }


def source_id(src: Path) -> str:
    """How a store names its source: the folder's absolute path (a pseudo-source such as 'skimage-demo' as given)."""
    return str(src.resolve()) if src.exists() else str(src)
