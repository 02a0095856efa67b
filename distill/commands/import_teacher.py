"""`distill import-teacher`: a fitted VGG-S as a training run of the workspace."""

from __future__ import annotations

from pathlib import Path

from distill.errors import DistillError
from distill.training.teacher_run import import_teacher, own_caches, student_from_checkpoint
from distill.workspace import Workspace


def run(ws: Workspace, checkpoint: Path, caches: list[Path] | None) -> dict:
    """The checkpoint as a new run of workspace `ws`, with the caches it labelled
    (given, or all of the workspace's)."""
    checkpoint = teacher_file(checkpoint)
    student = student_from_checkpoint(checkpoint)
    chosen = own_caches(student, checkpoint, caches or ws.all("cache"))
    if caches and len(chosen) != len(caches):
        raise DistillError(f"only {len(chosen)} of the {len(caches)} caches were labelled by {checkpoint}")
    sources = [(ws.store_of(cache), cache.path) for cache in chosen]
    with ws.new_run("run", "vgg_s-imported") as run_dir:
        return import_teacher(student, checkpoint, sources, run_dir)


def teacher_file(path: Path) -> Path:
    """The checkpoint a path names: the file itself, or the teacher.pt of a `distill fit-teacher` folder."""
    if not path.is_dir():
        return path
    if (path / "teacher.pt").is_file():
        return path / "teacher.pt"
    if (path / "student.pt").is_file():
        raise DistillError(
            f"{path} is a training run (a student), which compress, eval and export take as it is; import-teacher "
            "takes a fitted VGG-S (TEACHER/teacher.pt of `distill fit-teacher`)"
        )
    raise DistillError(f"{path} is a folder without teacher.pt: give a fitted VGG-S (TEACHER/teacher.pt)")
