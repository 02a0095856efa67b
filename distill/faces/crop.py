"""`distill crop`: MTCNN over a folder of photos into a face store, resumable and robust to bad files."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from distill.datasets.readers import Sample, read_dataset
from distill.errors import DistillError
from distill.faces import store as fs
from distill.faces.images import BadImage, aligned_crop, load_rgb
from distill.progress import progress_bar
from distill.workspace import provenance


@dataclass
class CropConfig:
    size: int = 112  # side of the stored square crop, px
    margin: float = 0.25  # crop side = max(box w, h) * (1 + margin)
    align: bool = True  # rotate so the eyes are level
    all_faces: bool = False  # keep every face of a photo, not only the most confident
    min_prob: float = 0.9  # detection probability below which a face is ignored
    min_face: int = 20  # MTCNN min_face_size, px
    batch: int = 16  # images of equal size detected together
    part_images: int = 256  # images per crash-safe part file


def make_detector(cfg: CropConfig):
    """facenet-pytorch's MTCNN; its P/R/O-net weights ship inside the wheel (no download)."""
    try:
        from facenet_pytorch import MTCNN
    except ImportError as err:  # pragma: no cover - setup installs it
        raise DistillError(
            "facenet-pytorch is not installed: run `make setup` (pip install --no-deps facenet-pytorch==2.6.0)"
        ) from err
    return MTCNN(keep_all=True, min_face_size=cfg.min_face, device="cpu")


def detect(detector, images: list) -> list[tuple[np.ndarray, np.ndarray, np.ndarray] | None]:
    """Boxes, probabilities and landmarks per image (None where no face); images must share one size."""
    with torch.inference_mode():
        boxes, probs, points = detector.detect(images, landmarks=True)
    return [
        None if b is None else (np.asarray(b), np.asarray(p), np.asarray(lm))
        for b, p, lm in zip(boxes, probs, points, strict=True)
    ]


def _faces_of(sample: Sample, img, found, cfg: CropConfig, note: str):
    """FaceRows and the manifest row for one image, given its detections."""
    if found is None:
        return [], fs.ManifestRow(sample.key, str(sample.path), "skipped", "no-face: no face detected", 0)
    boxes, probs, points = found
    keep = np.flatnonzero(probs >= cfg.min_prob)
    if keep.size == 0:
        reason = f"no-face: best detection probability {probs.max():.2f} < {cfg.min_prob}"
        return [], fs.ManifestRow(sample.key, str(sample.path), "skipped", reason, 0)
    order = keep[np.argsort(-probs[keep], kind="stable")]
    chosen = order if cfg.all_faces else order[:1]
    rows = []
    for rank, i in enumerate(chosen):
        pixels = aligned_crop(img, boxes[i], points[i], cfg.size, cfg.margin, cfg.align)
        meta = dict(sample.meta, face_rank=int(rank), faces_in_image=int(keep.size), **({"note": note} if note else {}))
        key = sample.key if rank == 0 else f"{sample.key}#{rank}"
        rows.append(
            fs.FaceRow(
                pixels,
                key,
                str(sample.path),
                boxes[i],
                points[i],
                float(probs[i]),
                sample.label or "",
                json.dumps(meta),
            )
        )
    reason = note if keep.size == 1 else f"kept {len(chosen)} of {keep.size} faces" + (f"; {note}" if note else "")
    return rows, fs.ManifestRow(sample.key, str(sample.path), "ok", reason, int(keep.size))


def _load(sample: Sample):
    if sample.pixels is not None:
        from PIL import Image

        return Image.fromarray(sample.pixels).convert("RGB"), ""
    return load_rgb(sample.path)


def _same_size_batches(loaded: list, max_batch: int):
    """Group consecutive decoded images of equal size: MTCNN batches only equal-size images."""
    batch: list = []
    for item in loaded:
        if batch and (len(batch) == max_batch or batch[-1][1].size != item[1].size):
            yield batch
            batch = []
        batch.append(item)
    if batch:
        yield batch


def process_chunk(detector, samples: list[Sample], cfg: CropConfig, pool: ThreadPoolExecutor):
    """Decode (threads) and detect (batched) one chunk; returns face rows and manifest rows in sample order."""
    faces, manifest, loaded = [], {}, []
    for sample, result in zip(samples, pool.map(_safe_load, samples), strict=True):
        if isinstance(result, BadImage):
            manifest[sample.key] = fs.ManifestRow(sample.key, str(sample.path), "skipped", str(result), 0)
        else:
            loaded.append((sample, *result))
    per_key = {}
    for batch in _same_size_batches(loaded, cfg.batch):
        for (sample, img, note), found in zip(batch, detect(detector, [b[1] for b in batch]), strict=True):
            per_key[sample.key] = _faces_of(sample, img, found, cfg, note)
    for sample in samples:
        if sample.key in per_key:
            rows, manifest[sample.key] = per_key[sample.key]
            faces.extend(rows)
    return faces, [manifest[s.key] for s in samples]


def release_freed_memory() -> None:
    """Hand freed heap back to the OS (glibc only; a no-op elsewhere). Decoding and detecting photos of every
    size leaves glibc's heap fragmented: without this, a crop's resident size rose ~25 MB per 256-photo part
    although nothing was kept (malloc_trim brought it back to the same level after every part)."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    if name and "libc.so" in name:
        ctypes.CDLL(name).malloc_trim(0)


def _safe_load(sample: Sample):
    try:
        return _load(sample)
    except BadImage as err:
        return err


def crop(
    src: Path,
    store: Path,
    cfg: CropConfig | None = None,
    reader: str = "auto",
    samples: list | None = None,
    show_progress: bool = True,
) -> dict:
    """Crop every image of `src` into the face store `store`; resumes a killed run; returns a summary."""
    cfg = cfg or CropConfig()
    if samples is None:
        samples, reader = read_dataset(reader, src)
    done, part_index = fs.done_keys(store)
    todo = [s for s in samples if s.key not in done]
    torch.set_num_threads(max(1, torch.get_num_threads()))
    if todo:
        detector = make_detector(cfg)
        with ThreadPoolExecutor(max_workers=2) as pool, progress_bar(f"crop {src}", len(todo), show_progress) as adv:
            for start in range(0, len(todo), cfg.part_images):
                chunk = todo[start : start + cfg.part_images]
                faces, manifest = process_chunk(detector, chunk, cfg, pool)
                fs.write_part(store, part_index, faces, manifest, cfg.size)
                part_index += 1
                adv(len(chunk))
                release_freed_memory()
    attrs = {
        "size": cfg.size,
        "crop_config": json.dumps(asdict(cfg)),
        "reader": reader,
        "source_root": str(src),
        "provenance": json.dumps(provenance("crop", src=str(src))),
    }
    summary = fs.finalize(store, attrs)
    summary["store"] = str(store)
    summary["new_images"] = len(todo)
    return summary
