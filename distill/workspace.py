"""The work directory: where commands write artefacts and how they find the newest one of a kind."""

from __future__ import annotations

import datetime as dt
import os
import platform
import sys
from dataclasses import dataclass, field
from pathlib import Path

from distill.errors import DistillError

DEFAULT_WORKDIR = Path("distill-work")
# kind -> (sub-folder, file pattern)
KINDS = {
    "faces": ("faces", "*.h5"),
    "cache": ("caches", "*.h5"),
    "run": ("runs", "*/student.pt"),
    "compressed": ("compressed", "*/model.distill"),
    "teacher": ("teachers", "*/teacher.pt"),
    "eval": ("evals", "*/eval.json"),
}
_HOW_TO_MAKE = {
    "faces": "distill crop SRC",
    "cache": "distill label --teacher SPEC SRC",
    "run": "distill train",
    "compressed": "distill compress",
    "teacher": "distill fit-teacher",
    "eval": "distill eval DATASET",
}


@dataclass
class Workspace:
    # the CLI's --workdir, also for library code that looks up artefacts (e.g. vgg_s finding fitted weights)
    root: Path = field(default_factory=lambda: Path(os.environ.get("DISTILL_WORKDIR", DEFAULT_WORKDIR)))

    def dir(self, kind: str) -> Path:
        return self.root / KINDS[kind][0]

    def all(self, kind: str) -> list[Path]:
        sub, pattern = KINDS[kind]
        return sorted((self.root / sub).glob(pattern), key=lambda p: p.stat().st_mtime)

    def newest(self, kind: str) -> Path:
        found = self.all(kind)
        if not found:
            raise DistillError(
                f"no {kind} artefact in {self.dir(kind)}; make one with `{_HOW_TO_MAKE[kind]}` "
                f"(or pass a path / --workdir)"
            )
        return found[-1]

    def new_run_dir(self, kind: str, name: str) -> Path:
        """A fresh folder; in a multi-process job, the one folder all its ranks share."""
        from distill.distributed import RUN_DIR_ENV, shared_run_name

        shared = shared_run_name()
        if shared:
            path = Path(shared) if shared == os.environ.get(RUN_DIR_ENV) else self.dir(kind) / f"{shared}-{name}"
            path.mkdir(parents=True, exist_ok=True)
            return path
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        path = self.dir(kind) / f"{stamp}-{name}"
        n = 1
        while path.exists():
            n += 1
            path = self.dir(kind) / f"{stamp}-{name}-{n}"
        path.mkdir(parents=True)
        return path


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
