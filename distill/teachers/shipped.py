"""The VGG-S that ships inside the package (teachers/weights/): fitted on FER2013 by `distill fit-teacher`,
compressed by `distill compress`, described by its provenance record (vgg_s.json: data, commands, machine and the
held-out score measured on it), so a bare `--teacher vgg_s` works on a fresh install without a fit of hours."""

from __future__ import annotations

import json
from pathlib import Path

from distill.errors import DistillError
from distill.storage.files import sha256_file
from distill.teachers.base import Teacher

WEIGHTS = Path(__file__).parent / "weights"
RECORD = WEIGHTS / "vgg_s.json"
NO_WEIGHTS = (
    "vgg_s has no weights: train it with `distill fit-teacher --arch vgg_s --data DATASET` or give a checkpoint "
    "(--teacher vgg_s:PATH.pt); a random teacher is never used"
)


def shipped_record() -> dict | None:
    """The shipped teacher's provenance record, None where this install has none."""
    if not RECORD.is_file():
        return None
    try:
        record = json.loads(RECORD.read_text())
    except json.JSONDecodeError as err:
        raise DistillError(f"{RECORD} is damaged ({err}): reinstall distill") from err
    return record


def shipped_teacher(spec: str = "vgg_s") -> Teacher:
    """The shipped VGG-S as a Teacher: the compressed network, its classes and preprocessing, mirror-averaged
    where its record says it was scored so."""
    from distill.compress.distill_file import load_compressed

    record = shipped_record()
    if record is None:
        raise DistillError(NO_WEIGHTS + " (this install ships none)")
    path = WEIGHTS / record["file"]
    if not path.is_file() or sha256_file(path) != record["sha256"]:
        raise DistillError(f"the shipped VGG-S {path} is missing or damaged (SHA-256 differs): reinstall distill")
    network = load_compressed(path)  # a Student: the network, its classes and its own preprocessing
    return Teacher(network.net, network.classes, network.preprocess, spec, record["sha256"], bool(record.get("mirror")))


def shipped_summary() -> str:
    """One line on the shipped teacher for `distill list teachers`: what it is and its measured held-out score."""
    record = shipped_record()
    if record is None:
        return " None ships with this install."
    score = record.get("held_out")
    if not score:
        return f" Shipped: {record['describe']} (not yet scored)."
    return (
        f" Shipped: {record['describe']}, {record['bytes'] / 1e6:.1f} MB; {score['accuracy']:.2f}% / UAR "
        f"{score['uar']:.2f}% on {score['faces']:,} held-out {score['dataset']} faces (docs/results.md)."
    )
