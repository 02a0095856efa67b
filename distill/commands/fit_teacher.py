"""`distill fit-teacher`: a teacher trained on a labelled folder or store, in a new folder of the workspace."""

from __future__ import annotations

from pathlib import Path

from distill.config import SMALL_CROP, CropConfig, FitConfig
from distill.datasets.readers import read_dataset
from distill.errors import DistillError
from distill.faces.crop import crop
from distill.provenance import store_name
from distill.training.supervised import check_architecture, check_labels, fit_teacher, resume_fit
from distill.workspace import Workspace


def run(
    ws: Workspace, data: Path | None, reader: str, cfg: FitConfig, announce=None, resume: Path | None = None
) -> dict:
    """A labelled folder (cropped first, under teachers/crops/ so that `label` never takes
    the teacher's own test faces for unlabelled material) or a labelled store, trained in a new teacher folder;
    or an interrupted fit continued from its checkpoint."""
    if resume is not None:
        return resume_fit(resume)
    if data is None:
        raise DistillError("give the labelled set with --data PATH (or --resume CHECKPOINT to continue a fit)")
    check_architecture(cfg.arch)
    store = data
    if data.is_dir():
        samples, reader = read_dataset(reader, data)
        check_labels([s.label for s in samples], data)
        detector = cfg.detector or ("whole" if largest_side(samples) <= SMALL_CROP else "mtcnn")
        suffix = "" if detector == "mtcnn" else f"-{detector}"  # mtcnn: the name stores had before detectors
        store = ws.dir("teacher") / "crops" / f"{store_name(data)}-labelled{suffix}.h5"
        cropped = crop(data, store, CropConfig(detector=detector), reader=reader, samples=samples)
        if announce is not None:
            announce("crop summary", cropped | {"detector": detector})
    elif not data.exists():
        raise DistillError(f"{data}: no such folder or face store")
    with ws.new_run("teacher", cfg.arch.replace(":", "-")) as out_dir:
        return fit_teacher(store, out_dir, cfg)


def largest_side(samples: list) -> int:
    """The longest side of any image (read from the file headers, not decoded)."""
    from PIL import Image

    side = 0
    for s in samples:
        if s.pixels is not None:
            side = max(side, *s.pixels.shape[:2])
        else:
            try:
                with Image.open(s.path) as img:
                    side = max(side, *img.size)
            except (OSError, ValueError):  # crop records the bad image with its reason
                continue
    return side
