"""The labelled faces an evaluation scores: MTCNN crops like training (kept under evals/crops/), or whole images."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from distill.datasets.readers import Sample
from distill.errors import DistillError
from distill.faces.images import BadImage, load_rgb


@dataclass
class EvalSet:
    """Faces (N,S,S,3) uint8 and their canonical labels, with what could not be used."""

    keys: list[str]
    pixels: np.ndarray
    labels: list[str]
    skipped: dict[str, str]
    cropped: int
    ambiguous: dict[str, list[str]] = field(default_factory=dict)  # key -> its labels: listed twice, left out
    detected: bool = True  # False: --no-crop, every image scored whole


def one_label_each(samples: list[Sample]) -> tuple[list[Sample], dict[str, list[str]]]:
    """Each labelled key once: a repeat with the same label is dropped, and a key listed with different labels is
    left out (which one is right cannot be known), returned with its labels."""
    labels: dict[str, list[str]] = {}
    for s in samples:
        if s.label is not None and s.label not in labels.setdefault(s.key, []):
            labels[s.key].append(s.label)
    ambiguous = {key: found for key, found in labels.items() if len(found) > 1}
    seen: set[str] = set()
    kept = []
    for s in samples:
        if s.label is None or (s.key not in ambiguous and s.key not in seen):
            kept.append(s)
            seen.add(s.key)
    return kept, ambiguous


def only_keys(samples: list[Sample], keys_file: Path) -> list[Sample]:
    """The samples whose keys a file lists, one a line (e.g. the test-keys.txt of a fitted teacher)."""
    if not keys_file.is_file():
        raise DistillError(f"keys file {keys_file} not found")
    wanted = {line.strip() for line in keys_file.read_text().splitlines() if line.strip()}
    kept = [s for s in samples if s.key in wanted]
    if not kept:
        raise DistillError(f"none of the {len(wanted)} keys in {keys_file} is an image of this dataset")
    if unknown := sorted(wanted - {s.key for s in kept}):  # a subset scored as if it were the file's would mislead
        raise DistillError(
            f"{len(unknown)} of the {len(wanted)} keys in {keys_file} name no image of this dataset "
            f"(e.g. {', '.join(unknown[:3])}): a keys file lists the set's own image names, one a line"
        )
    return kept


def load_uncropped(samples: list[Sample], size: int) -> EvalSet:
    """Resize each whole image to size x size (for sets that are already tight face crops)."""
    from PIL import Image

    keys, pixels, labels, skipped = [], [], [], {}
    for s in samples:
        if s.label is None:
            continue
        try:
            img = Image.fromarray(s.pixels).convert("RGB") if s.pixels is not None else load_rgb(s.path, 1)[0]
        except BadImage as err:
            skipped[s.key] = str(err)
            continue
        keys.append(s.key)
        pixels.append(np.asarray(img.resize((size, size), Image.Resampling.BILINEAR)))
        labels.append(s.label)
    return EvalSet(keys, np.stack(pixels) if pixels else np.zeros((0, size, size, 3), np.uint8), labels, skipped, 0)


def load_cropped(
    samples: list[Sample], store_path: Path, size: int, align: bool = True, detector: str = "mtcnn"
) -> EvalSet:
    """Crop (MTCNN, or `detector`) with the training settings (store reused across runs); faceless images fall back
    to the whole image, counted in the report, so every labelled image is scored. `align` False keeps the photo's
    own roll (the teachers' alignment measurement, experiments/framing.py)."""
    from distill.config import CropConfig
    from distill.faces.crop import NoFaces, crop
    from distill.faces.store import FaceStore

    labelled = [s for s in samples if s.label is not None]
    try:
        cfg = CropConfig(size=size, align=align, detector=detector)
        crop(Path(store_path.stem), store_path, cfg, reader="eval", samples=labelled)
    except NoFaces:  # not one face found: every image is scored whole
        return load_uncropped(labelled, size)
    store = FaceStore(store_path)
    row = {k: i for i, k in enumerate(store.keys)}
    missing = [s for s in labelled if s.key not in row]
    fallback = load_uncropped(missing, size)
    keys = [s.key for s in labelled if s.key in row] + fallback.keys
    rows = np.array([row[s.key] for s in labelled if s.key in row], dtype=np.int64)
    pixels = np.concatenate([_rows_in_order(store, rows), fallback.pixels])
    labels = [s.label for s in labelled if s.key in row] + fallback.labels
    return EvalSet(keys, pixels, labels, fallback.skipped, len(keys) - len(fallback.keys))


def _rows_in_order(store, rows: np.ndarray) -> np.ndarray:
    """store pixels at `rows` in the given order (h5py fancy indexing needs increasing, unique indices)."""
    if len(rows) == 0:
        return np.zeros((0, store.size, store.size, 3), np.uint8)
    unique, inverse = np.unique(rows, return_inverse=True)
    return store.pixels(unique)[inverse]
