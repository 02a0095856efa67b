"""`distill label`: run a teacher (or ensemble) once over a face store into a posterior cache; resumable."""

from __future__ import annotations

import hashlib
import json
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import h5py
import numpy as np
import torch

from distill import augment
from distill.cache import KIND, probs_of
from distill.errors import DistillError
from distill.faces.store import FaceStore, require_store
from distill.fileio import atomic_path, write_json
from distill.h5util import merge_rows, write_shard
from distill.progress import progress_bar
from distill.teachers.spec import build_teacher
from distill.workspace import provenance


@dataclass
class LabelConfig:
    teacher: str = "mini_xception"
    combine: str = "prob"  # ensemble: prob | logit | geometric
    class_map: str | None = None  # ensemble: member_class=ensemble_class,...
    views: int = 0  # augmented views per face to cache (consistent teaching)
    seed: int = 0
    batch: int = 128
    part_rows: int = 2048  # faces per crash-safe part file
    augment: augment.AugmentConfig = field(default_factory=augment.AugmentConfig)


def default_cache_path(workdir: Path, store: Path, teacher: str, views: int) -> Path:
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", teacher.replace("+", "__"))[:80].strip("_")
    return workdir / "caches" / f"{store.stem}--{slug}{f'--v{views}' if views else ''}.h5"


def _teacher_forward(teacher, pixels: np.ndarray, params: np.ndarray | None) -> np.ndarray:
    x = augment.to_float(pixels)
    if params is not None:
        x = augment.apply_views(x, torch.from_numpy(params))
    with torch.inference_mode():
        return teacher(x).float().numpy()


def _label_rows(teacher, pixels: np.ndarray, store: FaceStore, start: int, cfg: LabelConfig) -> dict[str, np.ndarray]:
    """Columns of rows start..start+len(pixels): logits, probs, keys (+ views/params, views/logits, views/probs)."""
    stop = start + len(pixels)
    cols = {
        "logits": np.concatenate(
            [_teacher_forward(teacher, pixels[i : i + cfg.batch], None) for i in range(0, len(pixels), cfg.batch)]
        )
    }
    if cfg.views:
        params = np.stack([augment.view_params(i, cfg.views, cfg.augment, cfg.seed) for i in range(start, stop)])
        k = cfg.views
        flat_px = np.repeat(pixels, k, axis=0)  # (n*k, S, S, 3), row i*k + j = view j of face i
        flat_par = params.reshape(-1, augment.N_PARAMS)
        logits = np.concatenate(
            [
                _teacher_forward(teacher, flat_px[i : i + cfg.batch], flat_par[i : i + cfg.batch])
                for i in range(0, len(flat_px), cfg.batch)
            ]
        )
        cols["views/params"] = params
        cols["views/logits"] = logits.reshape(stop - start, k, -1)
    cols["probs"] = probs_of(cols["logits"])
    if cfg.views:
        cols["views/probs"] = probs_of(cols["views/logits"])
    cols["keys"] = np.array(store.keys[start:stop], dtype=object)
    return cols


def _identity(teacher, store: FaceStore, cfg: LabelConfig) -> dict:
    """What must match for parts of an interrupted run to be reused."""
    return {
        "teacher": teacher.describe(),
        "store_fingerprint": store.fingerprint,
        "views": cfg.views,
        "seed": cfg.seed,
        "augment": asdict(cfg.augment),
    }


def _resume_point(parts: Path, identity: dict, fresh: bool) -> int:
    """First row not yet covered by contiguous parts; refuse parts made by another teacher/store."""
    meta = parts / "identity.json"
    if parts.exists() and (fresh or not meta.exists()):
        for p in parts.glob("part-*.h5"):
            p.unlink()
    elif parts.exists() and json.loads(meta.read_text()) != json.loads(json.dumps(identity, default=str)):
        raise DistillError(
            f"{parts} holds an interrupted run for another teacher, store or settings; "
            "re-run with --fresh to discard it"
        )
    parts.mkdir(parents=True, exist_ok=True)
    write_json(meta, identity)
    row = 0
    for p in sorted(parts.glob("part-*.h5")):
        start = int(p.stem.split("-")[1])
        with h5py.File(p, "r") as f:
            n = len(f["logits"])
        if start != row:
            p.unlink()  # not contiguous (cannot happen with our writer); recompute
            continue
        row = start + n
    return row


def label(store_path: Path, out: Path, cfg: LabelConfig, fresh: bool = False, show_progress: bool = True) -> dict:
    """Label every face of the store; returns a summary. Re-running resumes; the result lands atomically."""
    store = require_store(store_path)
    if len(store) == 0:
        raise DistillError(f"{store_path} has no faces to label")
    teacher = build_teacher(cfg.teacher, cfg.combine, cfg.class_map)
    identity = _identity(teacher, store, cfg)
    parts = out.with_name(out.name + ".parts")
    row = _resume_point(parts, identity, fresh)
    torch.manual_seed(cfg.seed)
    n = len(store)
    # the next part's faces are read (and un-gzipped) in a thread while the teacher runs on the current part
    with progress_bar(f"label {cfg.teacher}", n, show_progress) as advance, ThreadPoolExecutor(1) as reader:
        advance(row)
        ahead = reader.submit(store.pixels, slice(row, min(row + cfg.part_rows, n)))
        while row < n:
            stop = min(row + cfg.part_rows, n)
            pixels = ahead.result()
            if stop < n:
                ahead = reader.submit(store.pixels, slice(stop, min(stop + cfg.part_rows, n)))
            write_shard(parts / f"part-{row:09d}.h5", _label_rows(teacher, pixels, store, row, cfg))
            advance(stop - row)
            row = stop
    _finalize(out, parts, teacher, store, cfg)
    return {"cache": str(out), "faces": len(store), "classes": teacher.classes, "views": cfg.views}


def _finalize(out: Path, parts: Path, teacher, store: FaceStore, cfg: LabelConfig) -> None:
    files = sorted(parts.glob("part-*.h5"))
    handles = [h5py.File(p, "r") for p in files]
    names = ["logits", "probs", "keys"] + (["views/params", "views/logits", "views/probs"] if cfg.views else [])
    try:
        with atomic_path(out) as tmp, h5py.File(tmp, "w") as f:
            hasher = hashlib.sha256()
            merge_rows(handles, f, names, compress=False, hasher=hasher)
            if list(map(str, f["keys"].asstr()[()])) != store.keys:
                raise DistillError("internal: labelled rows do not match the face store; re-run with --fresh")
            attrs = {
                "distill_kind": KIND,
                "format_version": 1,
                "classes": json.dumps(teacher.classes),
                "teacher": json.dumps(teacher.describe()),
                "store_path": str(store.path.resolve()),
                "store_fingerprint": store.fingerprint,
                "views": cfg.views,
                "fingerprint": hasher.hexdigest(),
                "config": json.dumps(asdict(cfg)),
                "provenance": json.dumps(provenance("label")),
            }
            f.attrs.update(attrs)
            f["keys"].attrs["note"] = "face keys, row-aligned with the face store"
            f.attrs["preprocess"] = json.dumps(getattr(teacher.preprocess, "to_dict", lambda: "per member")())
    finally:
        for h in handles:
            h.close()
    for p in files:
        p.unlink()
    (parts / "identity.json").unlink(missing_ok=True)
    parts.rmdir()
