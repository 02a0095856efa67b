"""Label throughput of `distill label` vs bare teacher forward passes on the same batches, in one run.

Bare = the teacher's forward over batches already in memory (with the same augmented views when --views is
set): the floor any labeller pays. Ours adds reading the face store, sharded crash-safe writes and the final
merge into the self-describing cache.
Usage: python benchmarks/bench_label.py [FOLDER] [--n 2048] [--teacher mini_xception] [--views 0]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from distill.config import LabelConfig
from distill.datasets.readers import read_folder
from distill.faces import augment
from distill.faces.crop import crop
from distill.faces.framing import teacher_input
from distill.faces.store import FaceStore
from distill.labelling.label import label
from distill.teachers.build import build_teacher

DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "data" / "faces-unlabeled" / "images"


def bare(teacher, pixels: np.ndarray, cfg: LabelConfig) -> float:
    side = teacher_input(teacher.describe())[1]  # views made at the teacher's side, as label makes them
    start = time.perf_counter()
    with torch.inference_mode():
        for i in range(0, len(pixels), cfg.batch):
            teacher(augment.to_float(pixels[i : i + cfg.batch]))
        if cfg.views:
            params = np.stack([augment.view_params(i, cfg.views, cfg.augment, cfg.seed) for i in range(len(pixels))])
            flat_px, flat_par = np.repeat(pixels, cfg.views, 0), params.reshape(-1, augment.N_PARAMS)
            for i in range(0, len(flat_px), cfg.batch):
                x = augment.to_float(flat_px[i : i + cfg.batch])
                teacher(augment.views_at(x, torch.from_numpy(flat_par[i : i + cfg.batch]), side))
    return time.perf_counter() - start


def ours(store: Path, cfg: LabelConfig, tmp: Path) -> float:
    start = time.perf_counter()
    label(store, tmp / f"cache-{time.time_ns()}.h5", cfg, show_progress=False)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser()
    ap.add_argument("folder", nargs="?", type=Path, default=DEFAULT)
    ap.add_argument("--n", type=int, default=2048, help="photos to crop into the benchmark store")
    ap.add_argument("--teacher", default="mini_xception")
    ap.add_argument("--views", type=int, default=0)
    args = ap.parse_args(argv)
    if not args.folder.is_dir():
        sys.exit(f"no image folder at {args.folder}; pass one")
    cfg = LabelConfig(teacher=args.teacher, views=args.views)
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "faces.h5"
        crop(args.folder, store, reader="folder", samples=read_folder(args.folder)[: args.n], show_progress=False)
        pixels = FaceStore(store).pixels(slice(None))
        teacher = build_teacher(args.teacher)
        bare(teacher, pixels[:256], cfg)  # warm-up (allocator, thread pools)
        t_bare = bare(teacher, pixels, cfg)
        t_ours = ours(store, cfg, Path(tmp))
    n = len(pixels)
    ratio = t_bare / t_ours
    print(
        f"label: {n} faces ({args.teacher}, {args.views} views)  bare forward {n / t_bare:.0f} faces/s  "
        f"distill label {n / t_ours:.0f} faces/s  throughput ratio {ratio:.2f} (target >= 0.9)"
    )
    return {
        "bench": f"label {args.teacher} v{args.views}",
        "unit": "faces/s",
        "ours": n / t_ours,
        "bare": n / t_bare,
        "ratio": ratio,
    }


if __name__ == "__main__":
    main()
