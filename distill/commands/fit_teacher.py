"""`distill fit-teacher`: a teacher trained on a labelled folder or store, in a new folder of the workspace."""

from __future__ import annotations

from pathlib import Path

from distill.config import FitConfig
from distill.errors import DistillError
from distill.faces.crop import crop
from distill.provenance import store_name
from distill.training.supervised import fit_teacher
from distill.workspace import Workspace


def run(ws: Workspace, data: Path, reader: str, cfg: FitConfig, announce=None) -> dict:
    """A labelled folder (cropped first, under teachers/crops/ so that `label` never takes
    the teacher's own test faces for unlabelled material) or a labelled store, trained in a new teacher folder."""
    store = data
    if data.is_dir():
        store = ws.dir("teacher") / "crops" / f"{store_name(data)}-labelled.h5"
        cropped = crop(data, store, reader=reader)
        if announce is not None:
            announce("crop summary", cropped)
    elif not data.exists():
        raise DistillError(f"{data}: no such folder or face store")
    with ws.new_run("teacher", cfg.arch.replace(":", "-")) as out_dir:
        return fit_teacher(store, out_dir, cfg)
