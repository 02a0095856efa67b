"""The work directory: where commands write artefacts and how they find the newest one of a kind."""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from distill.errors import DistillError
from distill.provenance import source_id, store_name
from distill.registry import TEACHERS
from distill.specs import TeacherSpec

DEFAULT_WORKDIR = Path("distill-work")
# kind -> (sub-folder, file pattern)
KINDS = {
    "faces": ("faces", "*.h5"),
    "cache": ("caches", "*.h5"),
    "run": ("runs", "*/student.pt"),
    "compressed": ("compressed", "*/model.distill"),
    "teacher": ("teachers", "*/teacher.pt"),
    "eval": ("evals", "*/eval.json"),
    "predictions": ("predictions", "*/predictions.csv"),
}
_HOW_TO_MAKE = {
    "faces": "distill crop SRC",
    "cache": "distill label --teacher SPEC SRC",
    "run": "distill train",
    "compressed": "distill compress",
    "teacher": "distill fit-teacher",
    "eval": "distill eval DATASET",
    "predictions": "distill predict SRC",
}


@dataclass
class Workspace:
    # the CLI's --workdir, also for library code that looks up artefacts (e.g. vgg_s finding fitted weights)
    root: Path = field(default_factory=lambda: Path(os.environ.get("DISTILL_WORKDIR", DEFAULT_WORKDIR)))

    def __post_init__(self) -> None:
        self.root = Path(self.root).absolute()  # every path it hands out (and every summary) is a full one

    def dir(self, kind: str) -> Path:
        return self.root / KINDS[kind][0]

    def all(self, kind: str) -> list[Path]:
        sub, pattern = KINDS[kind]
        return sorted((self.root / sub).glob(pattern), key=lambda p: p.stat().st_mtime)

    def newest(self, kind: str) -> Path:
        found = self.all(kind)
        if not found:
            raise DistillError(
                f"no {kind} artefact in {self.dir(kind).resolve()}; make one with `{_HOW_TO_MAKE[kind]}` "
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

    @contextlib.contextmanager
    def new_run(self, kind: str, name: str) -> Iterator[Path]:
        """new_run_dir for the block; a block that fails before it computed anything (no checkpoint, model or
        summary) leaves no folder behind, so a refused run does not litter the workspace."""
        from distill.distributed import shared_run_name

        path = self.new_run_dir(kind, safe_name(name))
        try:
            yield path
        except BaseException:
            if not shared_run_name() and not holds_work(path):
                shutil.rmtree(path, ignore_errors=True)
            raise

    def store_for(self, src: Path) -> Path:
        """The default face store of a photo folder: faces/NAME.h5, unless that holds another folder's crops
        (photos/ and images/ of one parent both map to its name); then NAME-<hash of the path>.h5."""
        from distill.faces.store import recorded_source

        plain = self.dir("faces") / f"{store_name(src)}.h5"
        recorded = recorded_source(plain)
        if recorded is None or recorded["source"] == source_id(src):
            return plain
        digest = hashlib.sha1(source_id(src).encode()).hexdigest()[:8]
        return plain.with_name(f"{plain.stem}-{digest}.h5")

    def eval_store(self, reader: str, root: Path, size: int, detector: str = "mtcnn", condition: str = "plain") -> Path:
        """Where eval keeps its crops of a labelled set: under evals/, apart from training material, so that
        neither `label` nor `train` can ever pick the test faces up as the newest store (one store a detector and
        photo condition)."""
        suffix = ("" if detector == "mtcnn" else f"-{detector}") + ("" if condition == "plain" else f"-{condition}")
        return self.dir("eval") / "crops" / f"{reader}-{store_name(root)}-{size}{suffix}.h5"

    def newest_model(self) -> Path:
        """The newest student.pt or model.distill of the workspace (what eval, export and predict take)."""
        found = sorted(self.all("run") + self.all("compressed"), key=lambda p: p.stat().st_mtime)
        if not found:
            raise DistillError(
                f"no student in {self.dir('run').resolve()} or {self.dir('compressed').resolve()}; make one with "
                "`distill train` (or pass a path / --workdir)"
            )
        return found[-1]

    def pin_fitted(self, spec: str) -> str:
        """A teacher spec whose fitted-teacher members without weights ('vgg_s') name the workspace's newest
        checkpoint of that architecture ('vgg_s:<root>/teachers/<stamp>-vgg_s/teacher.pt'); others unchanged."""
        pinned = []
        for member in TeacherSpec.parse(spec).members:
            text = member.text
            if TEACHERS.entry(member.name).extra.get("fitted") and not member.arg and "weights" not in member.options:
                fitted = [p for p in self.all("teacher") if p.parent.name.endswith(member.name)]
                text = f"{member.name}:{fitted[-1]}{text[len(member.name) :]}" if fitted else text
            pinned.append(text)
        return "+".join(pinned)

    def store_of(self, cache) -> Path:
        """The face store a cache was made from: its recorded path, or a moved copy found by fingerprint."""
        if cache.store_path.is_file():
            return cache.store_path
        import h5py

        for candidate in self.all("faces"):
            with h5py.File(candidate, "r") as f:
                if f.attrs.get("fingerprint") == cache.store_fingerprint:
                    return candidate
        raise DistillError(
            f"the face store of {cache.path} ({cache.store_path}) is gone and no store in "
            f"{self.dir('faces')} has its fingerprint; re-run `distill crop`"
        )


def safe_name(name: str) -> str:
    """A run's name as its folder spells it (every character but letters, digits, '_', '.', '-' made '_')."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def holds_work(folder: Path) -> bool:
    """Whether a run folder holds anything computed: a checkpoint, a model or a summary."""
    return any(
        p.suffix in (".ckpt", ".pt", ".distill") or p.name in ("summary.json", "eval.json", "progress.json")
        for p in folder.rglob("*")
    )
