"""`distill crop`: a face detector (MTCNN by default) over a folder of photos into a face store, resumable and
robust to bad files."""

from __future__ import annotations

import functools
import json
import multiprocessing
import os
import threading
import time
from collections import deque
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict
from pathlib import Path

import numpy as np

from distill.config import CropConfig
from distill.datasets.readers import Sample, read_dataset
from distill.errors import DistillError
from distill.faces import store as fs
from distill.faces.detectors import make_detector, recommended_min_prob
from distill.faces.images import BadImage, aligned_crop, load_rgb
from distill.progress import progress_bar
from distill.provenance import provenance, source_id
from distill.storage.locks import exclusive


def detector_for(cfg: CropConfig):
    """The detector `cfg` names, looking for faces from `cfg.min_face` px."""
    return make_detector(cfg.detector, cfg.min_face)


def min_prob_of(cfg: CropConfig) -> float:
    return cfg.min_prob if cfg.min_prob is not None else recommended_min_prob(cfg.detector)


def _faces_of(sample: Sample, img, found, cfg: CropConfig, note: str):
    """FaceRows and the manifest row for one image, given its detections."""
    if found is None:
        return [], fs.ManifestRow(sample.key, str(sample.path), "skipped", "no-face: no face detected", 0)
    boxes, probs, points = found.boxes, found.probs, found.landmarks
    min_prob = min_prob_of(cfg)
    keep = np.flatnonzero(probs >= min_prob)
    if keep.size == 0:
        reason = f"no-face: best detection score {probs.max():.2f} < {min_prob} ({cfg.detector})"
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


def _load(sample: Sample, cfg: CropConfig):
    if sample.pixels is not None:
        from PIL import Image

        return Image.fromarray(sample.pixels).convert("RGB"), ""
    return load_rgb(sample.path, cfg.min_side, cfg.max_pixels)


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


def process_chunk(detector, samples: list[Sample], cfg: CropConfig, pool: ThreadPoolExecutor, done=None):
    """Decode (threads) and detect (batched) one chunk; returns face rows and manifest rows in sample order.
    `done(n)` hears of every n photos finished (the progress bar counts photos, not parts)."""
    done = done or (lambda n: None)
    faces, manifest, loaded = [], {}, []
    for sample, result in zip(samples, pool.map(functools.partial(_safe_load, cfg=cfg), samples), strict=True):
        if isinstance(result, BadImage):
            manifest[sample.key] = fs.ManifestRow(sample.key, str(sample.path), "skipped", str(result), 0)
        else:
            loaded.append((sample, *result))
    done(len(samples) - len(loaded))
    per_key = {}
    for batch in _same_size_batches(loaded, cfg.batch):
        for (sample, img, note), found in zip(batch, detector.detect([b[1] for b in batch]), strict=True):
            per_key[sample.key] = _faces_of(sample, img, found, cfg, note)
        done(len(batch))
    for sample in samples:
        if sample.key in per_key:
            rows, manifest[sample.key] = per_key[sample.key]
            faces.extend(rows)
    return faces, [manifest[s.key] for s in samples]


_WORKER: dict = {}  # the detection process's MTCNN and decoding threads, made on its first part


def _detect_part(samples: list[Sample], cfg: CropConfig):
    """One part, in the detection process: (face rows, manifest rows)."""
    if "detector" not in _WORKER:
        from distill.progress import quiet_libraries

        quiet_libraries()
        _WORKER.update(detector=detector_for(cfg), pool=ThreadPoolExecutor(max_workers=2))
    try:
        return process_chunk(_WORKER["detector"], samples, cfg, _WORKER["pool"], _count_photos)
    finally:
        release_freed_memory()


def _count_photos(n: int) -> None:
    counter = _WORKER["counter"]
    with counter.get_lock():
        counter.value += n


def release_freed_memory() -> None:
    """Hand freed heap back to the OS after a part (glibc only; a no-op elsewhere): it lowers the detection
    process's peak, though only its replacement stops the slow creep of a fragmented heap."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    if name and "libc.so" in name:
        ctypes.CDLL(name).malloc_trim(0)


def detection_process(cfg: CropConfig, photos_done) -> ProcessPoolExecutor:
    """MTCNN runs in a child process, replaced every `worker_parts` parts, which keeps crop's memory flat.

    Why: MTCNN allocates tensors whose size changes with every photo (pyramids, candidate boxes); glibc's heap
    fragments and one process grew without bound although nothing is kept. Allocator settings that stop this (a
    fixed mmap threshold) cost a good share of crop's speed; a fresh process costs one start-up per `worker_parts`
    parts and keeps the peak flat (benchmarks/README.md)."""
    spawn = multiprocessing.get_context("spawn")  # fork would copy the parent's heap, and threads don't fork
    return ProcessPoolExecutor(1, mp_context=spawn, initializer=_start_worker, initargs=(os.getpid(), photos_done))


def _start_worker(parent: int, photos_done) -> None:
    """The detection process counts finished photos in `photos_done` (shared with the parent, which shows them), and
    exits with its parent: a killed crop must not leave it (~0.8 GB) behind, and the pool's queues don't tell it."""
    _WORKER["counter"] = photos_done

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, daemon=True, name="exit-with-parent").start()


def _safe_load(sample: Sample, cfg: CropConfig):
    try:
        return _load(sample, cfg)
    except BadImage as err:
        return err


def _result(future, timeout: float | None = None):
    try:
        return future.result(timeout)
    except BrokenProcessPool as err:
        raise DistillError(
            "the face detection process died (out of memory? or crop() called at the top level of a script "
            "without `if __name__ == '__main__':`, which a spawned process re-runs); the parts written so far are "
            "kept: run the same command again to resume"
        ) from err


class PhotoCount:
    """Photos the detection processes have finished (a counter they share with this one), passed on to the bar."""

    def __init__(self, adv):
        self.shared, self.shown, self.adv = multiprocessing.get_context("spawn").Value("q", 0), 0, adv

    def tick(self) -> None:
        now = self.shared.value
        if now > self.shown:
            self.adv(now - self.shown)
            self.shown = now

    def wait(self, future):
        """future's result, the bar moving while it comes."""
        while True:
            try:
                return _result(future, timeout=0.5)
            except FutureTimeout:
                self.tick()


def _crop_parts(chunks: list[list[Sample]], store: Path, part_index: int, cfg: CropConfig, count: PhotoCount) -> int:
    """Detect `chunks` in one fresh detection process, writing each part as it comes; returns the next index.
    The process has exited before the next one starts, so two never hold memory at once."""
    with detection_process(cfg, count.shared) as worker:
        pending: deque = deque()  # the next part is detected while this one is written

        def write_oldest() -> None:
            nonlocal part_index
            _, future = pending.popleft()
            fs.write_part(store, part_index, *count.wait(future), cfg.size)
            part_index += 1
            count.tick()

        for chunk in chunks:
            pending.append((chunk, worker.submit(_detect_part, chunk, cfg)))
            if len(pending) == 2:
                write_oldest()
        while pending:
            write_oldest()
    return part_index


class NoFaces(DistillError):
    """A crop that found no usable face: nothing is written (an empty store would hide a good one)."""


def check_same_source(store: Path, src: Path, cfg: CropConfig) -> None:
    """Refuse to add the crops of one source to a store (or an interrupted run) of another source or crop size."""
    recorded = fs.recorded_source(store)
    if recorded and (recorded["source"], recorded["size"]) != (source_id(src), cfg.size):
        raise DistillError(
            f"{store} holds {recorded['size']} px crops of {recorded['source']}, not {cfg.size} px crops of "
            f"{source_id(src)}; give another --out (or delete it)"
        )


def crop(
    src: Path,
    store: Path,
    cfg: CropConfig | None = None,
    reader: str = "auto",
    samples: list | None = None,
    show_progress: bool = True,
) -> dict:
    """Crop every image of `src` into the face store `store`; resumes a killed run; returns a summary.

    Raises NoFaces, writing nothing, when no image of `src` (and of the store so far) has a usable face."""
    cfg = cfg or CropConfig()
    recommended_min_prob(cfg.detector)  # an unknown detector is refused before any work
    if samples is None:
        samples, reader = read_dataset(reader, src)
    with exclusive(store, "crop"):
        check_same_source(store, src, cfg)
        done, part_index = fs.done_keys(store)
        todo = [s for s in samples if s.key not in done]
        if todo:
            fs.record_source(store, source_id(src), cfg.size)
            chunks = [todo[start : start + cfg.part_images] for start in range(0, len(todo), cfg.part_images)]
            with progress_bar(f"crop {src}", len(todo), show_progress) as adv:
                count = PhotoCount(adv)
                for first in range(0, len(chunks), cfg.worker_parts):
                    part_index = _crop_parts(chunks[first : first + cfg.worker_parts], store, part_index, cfg, count)
        attrs = {
            "size": cfg.size,
            "detector": cfg.detector,
            "crop_config": json.dumps(asdict(cfg)),
            "reader": reader,
            "source_root": source_id(src),
            "provenance": json.dumps(provenance("crop", src=str(src))),
        }
        try:
            summary = fs.finalize(store, attrs)
        except fs.EmptyStore as err:
            raise NoFaces(f"no usable face in {source_id(src)}: {_reasons(err.summary)}; nothing was written") from err
    summary["store"] = str(store.resolve())
    summary["new_images"] = len(todo)
    return summary


def _reasons(summary: dict) -> str:
    if not summary["images"]:
        return "no images found (jpg, png, bmp, webp, tif, gif, ppm, pgm; sub-folders and links are followed)"
    skipped = ", ".join(f"{n} {kind}" for kind, n in sorted(summary["skipped"].items(), key=lambda kv: -kv[1]))
    return f"{summary['images']} images, skipped: {skipped}"
