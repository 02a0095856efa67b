"""Registered dataset readers: each returns a stable-ordered list of Samples for a root folder or file."""

from __future__ import annotations

import csv
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from distill.datasets.emotions import CANONICAL, FER2013, canonical
from distill.errors import DistillError
from distill.registry import DATASETS

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif", ".ppm", ".pgm"}


@dataclass
class Sample:
    """One image: a file path, or in-memory pixels (FER2013's CSV); label is a canonical emotion or None."""

    key: str
    path: Path | None = None
    pixels: np.ndarray | None = None
    label: str | None = None
    meta: dict = field(default_factory=dict)


def _require_dir(root: Path) -> Path:
    root = Path(root)
    if not root.is_dir():
        raise DistillError(f"{root} is not a folder")
    return root


def list_images(root: Path) -> list[Path]:
    """Image files under root, recursive, any suffix case, stable (sorted) order. Linked sub-folders are followed
    (the ordinary way to pool datasets that live elsewhere), each real folder once, so a link loop cannot trap it."""
    root = _require_dir(root)
    found, seen = [], set()
    for folder, dirs, files in os.walk(root, followlinks=True):
        try:
            real = os.stat(folder)
        except OSError:  # a folder that vanished or cannot be read
            dirs[:] = []
            continue
        if (real.st_dev, real.st_ino) in seen:
            dirs[:] = []  # reached again through a link: already listed
            continue
        seen.add((real.st_dev, real.st_ino))
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))  # sorted: a folder reached twice, first path wins
        found += [Path(folder) / f for f in files if Path(f).suffix.lower() in IMAGE_SUFFIXES and not f.startswith(".")]
    return sorted(found, key=lambda p: p.relative_to(root).as_posix())


@DATASETS.register("folder", default_root="data/faces")
def read_folder(root: Path) -> list[Sample]:
    """Any tree of images (jpg/png/bmp/webp..., any case), recursive; no labels."""
    root = Path(root)
    return [Sample(p.relative_to(root).as_posix(), path=p) for p in list_images(root)]


@DATASETS.register("pubfig83", default_root="data/pubfig")
def read_pubfig83(root: Path) -> list[Sample]:
    """One folder per identity (PubFig83, LFW); identity is metadata, not an emotion label."""
    samples = read_folder(root)
    for s in samples:
        parts = Path(s.key).parts
        s.meta["identity"] = parts[0] if len(parts) > 1 else ""
    return samples


@DATASETS.register("csv", default_root="data/expressions-dev")
def read_csv_labels(root: Path, label_file: str = "labels.csv") -> list[Sample]:
    """`labels.csv` (image,emotion) beside an `images/` folder (or beside the images)."""
    root = _require_dir(root)
    labels = root / label_file
    if not labels.is_file():
        raise DistillError(f"{root} has no {label_file} (expected columns image,emotion)")
    image_dir = root / "images" if (root / "images").is_dir() else root
    samples, unknown = [], set()
    with open(labels, newline="", encoding="utf-8-sig") as f:  # -sig: a spreadsheet's byte-order mark is no column
        reader = csv.DictReader(f)
        if not reader.fieldnames or not {"image", "emotion"} <= set(reader.fieldnames):
            raise DistillError(f"{labels} must have columns image,emotion (found {reader.fieldnames})")
        for row in reader:
            label = canonical(row["emotion"])
            if label is None:
                unknown.add(row["emotion"])
            samples.append(Sample(row["image"], path=image_dir / row["image"], label=label))
    if unknown:
        raise DistillError(f"{labels}: unknown emotion labels {sorted(unknown)}; known: {', '.join(CANONICAL)}")
    return sorted(samples, key=lambda s: s.key)


# Rafd{angle}_{id}_{ethnicity}_{gender}_{emotion}_{gaze}.jpg, e.g. Rafd090_01_Caucasian_female_angry_frontal.jpg
RAFD_NAME = re.compile(
    r"^Rafd(?P<angle>\d{3})_(?P<subject>\d+)_(?P<ethnicity>[A-Za-z]+)_(?P<gender>[A-Za-z]+)_"
    r"(?P<emotion>[A-Za-z]+)_(?P<gaze>[A-Za-z]+)$"
)


@DATASETS.register("rafd", default_root="data/rafd")
def read_rafd(root: Path, angles: tuple[int, ...] = (45, 90, 135), gazes: tuple[str, ...] | None = None):
    """Radboud Faces by file name; default angles 45/90/135 (frontal and 45°, profiles dropped, as the papers)."""
    samples = []
    for path in list_images(root):
        m = RAFD_NAME.match(path.stem)
        if not m:
            continue
        angle, gaze = int(m["angle"]), m["gaze"].lower()
        if (angles and angle not in angles) or (gazes and gaze not in gazes):
            continue
        label = canonical(m["emotion"])
        meta = {
            "angle": angle,
            "subject": m["subject"],
            "ethnicity": m["ethnicity"],
            "gender": m["gender"],
            "gaze": gaze,
        }
        samples.append(Sample(path.name, path=path, label=label, meta=meta))
    if not samples:
        raise DistillError(f"no RaFD-named images (Rafd090_01_Caucasian_female_angry_frontal.jpg) in {root}")
    return samples


@DATASETS.register("fer2013", default_root="data/fer2013.csv")
def read_fer2013(root: Path, usage: str | None = None) -> list[Sample]:
    """The FER2013 CSV (emotion,pixels,Usage): 48x48 grey faces in memory; `usage` filters e.g. PublicTest."""
    root = Path(root)
    path = root / "fer2013.csv" if root.is_dir() else root
    if not path.is_file():
        raise DistillError(f"{path} not found (expected the FER2013 CSV with emotion,pixels,Usage)")
    samples = []
    with open(path, newline="") as f:
        for i, row in enumerate(csv.DictReader(f)):
            if usage and row.get("Usage") != usage:
                continue
            pixels = np.array(row["pixels"].split(), dtype=np.uint8)
            side = int(round(len(pixels) ** 0.5))
            if side * side != len(pixels):
                raise DistillError(f"{path} row {i + 2}: {len(pixels)} pixels is not a square image")
            samples.append(
                Sample(
                    f"{i:06d}",
                    pixels=pixels.reshape(side, side),
                    label=FER2013[int(row["emotion"])],
                    meta={"usage": row.get("Usage", "")},
                )
            )
    return samples


def detect_reader(root: Path) -> str:
    """Guess the layout of a folder: csv labels, RaFD names, identity folders, or a plain tree."""
    root = Path(root)
    if root.is_file() and root.suffix.lower() == ".csv":
        return "fer2013"
    _require_dir(root)
    if (root / "labels.csv").is_file():
        return "csv"
    files = list_images(root)
    if files and all(RAFD_NAME.match(p.stem) for p in files[:50]):
        return "rafd"
    if files and all(len(p.relative_to(root).parts) == 2 for p in files[:200]):
        return "pubfig83"
    return "folder"


def dataset_root(name: str, root: Path | None = None) -> Path:
    """The folder (or file) a reader reads: the given one, else the reader's default."""
    return Path(root) if root is not None else Path(DATASETS.entry(name).extra.get("default_root", "."))


def read_dataset(name: str, root: Path | None = None, **options) -> tuple[list[Sample], str]:
    """Read with a registered reader ('auto' detects); returns (samples, reader name)."""
    root = dataset_root(name, root)
    if name == "auto":
        name = detect_reader(Path(root))
    return DATASETS.get(name)(Path(root), **options), name
