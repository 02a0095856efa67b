"""Crop throughput of `distill crop` vs bare facenet-pytorch MTCNN calls on the same images, in one run.

Bare = what a user would write: open each photo with PIL, `mtcnn.detect(img, landmarks=True)`, crop the best
box with facenet's extract_face. Ours adds decoding checks, alignment, batching and the HDF5 store, and starts
its detection process afresh every 1,024 photos (flat memory): the default 2,048 photos pay for that twice.
Usage: python benchmarks/bench_crop.py [FOLDER] [--n 2048]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch
from PIL import Image

from distill.config import CropConfig
from distill.datasets.readers import read_folder
from distill.faces.crop import crop, make_detector

DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "data" / "lfw-unlabeled" / "images"


def bare(paths: list[Path]) -> float:
    from facenet_pytorch.models.utils.detect_face import extract_face

    mtcnn = make_detector(CropConfig())
    start = time.perf_counter()
    with torch.inference_mode():
        for p in paths:
            img = Image.open(p).convert("RGB")
            boxes, probs, _ = mtcnn.detect(img, landmarks=True)
            if boxes is not None:
                extract_face(img, boxes[probs.argmax()], image_size=112, margin=0)
    return time.perf_counter() - start


def ours(root: Path, samples) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        crop(root, Path(tmp) / "s.h5", CropConfig(), reader="folder", samples=samples, show_progress=False)
        return time.perf_counter() - start


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser()
    ap.add_argument("folder", nargs="?", type=Path, default=DEFAULT)
    ap.add_argument("--n", type=int, default=2048)
    args = ap.parse_args(argv)
    if not args.folder.is_dir():
        sys.exit(f"no image folder at {args.folder}; pass one")
    samples = read_folder(args.folder)[: args.n]
    ours(args.folder, samples[:8])  # warm-up (model load, thread pools)
    t_bare = bare([s.path for s in samples])
    t_ours = ours(args.folder, samples)
    ratio = t_bare / t_ours
    print(
        f"crop: {len(samples)} images  bare MTCNN {len(samples) / t_bare:.1f} img/s  distill crop "
        f"{len(samples) / t_ours:.1f} img/s  throughput ratio {ratio:.2f} (target >= 0.9)"
    )
    return {
        "bench": "crop",
        "unit": "img/s",
        "ours": len(samples) / t_ours,
        "bare": len(samples) / t_bare,
        "ratio": ratio,
    }


if __name__ == "__main__":
    main()
