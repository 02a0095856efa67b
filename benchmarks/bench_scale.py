"""Peak memory of `distill crop`, `label` and `train` as the number of images grows (target: flat).

Each command runs as its own process, as a user runs it; its peak resident memory (and that of the DataLoader
workers it started) comes from the kernel's rusage. Synthetic inputs: copies of the packaged demo faces with
noise, as photos for crop (MTCNN's speed bounds that sweep to a few thousand) and written straight into face
stores for label and train (up to 100k faces); train runs a fixed number of steps, so only the size of the
pool changes. Usage: python benchmarks/bench_scale.py [--crop 250,1000,4000] [--faces 1000,10000,100000]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from distill.demo_data import demo_samples
from distill.faces.store import FaceRow, ManifestRow, finalize, write_part

PART = 2048  # faces per store part, as `distill crop` writes them


# A child forked from a big process starts with that process's resident pages in its rusage peak, so each
# command runs under this small launcher, whose own children's peak is then the command's alone.
_LAUNCHER = (
    "import resource, subprocess, sys; code = subprocess.call(sys.argv[1:], stdout=subprocess.DEVNULL); "
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); sys.exit(code)"
)


def peak_mib(*args: str, cwd: Path) -> tuple[float, float]:
    """(peak RSS MiB of the command and the DataLoader workers it starts, seconds) of one `distill` command."""
    start = time.perf_counter()
    command = [sys.executable, "-c", _LAUNCHER, sys.executable, "-m", "distill.cli", *args]
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"distill {' '.join(args)} failed:\n{done.stderr[-2000:]}")
    return int(done.stdout.split()[-1]) / 1024, time.perf_counter() - start  # ru_maxrss is in KiB on Linux


def faces(root: Path) -> list[np.ndarray]:
    return [s.pixels for s in demo_samples(root)]


def write_photos(folder: Path, n: int, base: list[np.ndarray]) -> None:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        img = base[i % len(base)].astype(np.int16) + rng.integers(-6, 7, base[i % len(base)].shape)
        Image.fromarray(img.clip(0, 255).astype(np.uint8)).save(folder / f"{i:07d}.jpg", quality=90)


def write_store(store: Path, n: int, base: list[np.ndarray], size: int = 64) -> None:
    """A face store of n synthetic faces, written part by part (memory bounded by one part)."""
    small = [np.asarray(Image.fromarray(b).resize((size, size))) for b in base]
    rng = np.random.default_rng(0)
    for index, start in enumerate(range(0, n, PART)):
        rows = []
        for i in range(start, min(start + PART, n)):
            px = (small[i % len(small)].astype(np.int16) + rng.integers(-6, 7, small[0].shape)).clip(0, 255)
            box, marks = np.array([0, 0, size, size], np.float32), np.zeros((5, 2), np.float32)
            rows.append(FaceRow(px.astype(np.uint8), f"f{i:07d}", f"f{i:07d}.png", box, marks, 1.0))
        manifest = [ManifestRow(r.key, r.source, "ok", "", 1) for r in rows]
        write_part(store, index, rows, manifest, size)
    finalize(store, {"size": size, "source": "synthetic"})


def sweep(sizes: list[int], run, label: str) -> list[dict]:
    results = [(n, *run(n)) for n in sizes]
    for n, mib, secs in results:
        print(f"{label}: {n:>7} images  peak {mib:7.0f} MiB  ({secs:.0f} s)")
    first, last = results[0], results[-1]
    return [
        {
            "bench": f"peak memory {label}, {last[0]:,} vs {first[0]:,} images",
            "unit": "MiB",
            "ours": last[1],
            "bare": first[1],
            "ratio": last[1] / first[1],
        }
    ]


def main(argv: list[str] | None = None) -> list[dict]:
    ap = argparse.ArgumentParser()
    ap.add_argument("--crop", default="250,1000,4000", help="photo counts for the crop sweep")
    ap.add_argument("--faces", default="1000,10000,100000", help="face counts for the label and train sweeps")
    args = ap.parse_args(argv)
    crop_sizes, face_sizes = ([int(v) for v in s.split(",")] for s in (args.crop, args.faces))
    rows = []
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        base = faces(tmp / "demo")

        def crop(n: int) -> tuple[float, float]:
            write_photos(tmp / f"photos{n}", n, base)
            return peak_mib("crop", f"photos{n}", "--out", f"crop{n}.h5", cwd=tmp)

        def label(n: int) -> tuple[float, float]:
            write_store(tmp / f"faces{n}.h5", n, base)
            return peak_mib("label", f"faces{n}.h5", "--out", f"cache{n}.h5", cwd=tmp)

        def train(n: int) -> tuple[float, float]:
            args = ("--max-steps", "20", "--size", "64", "--grey", "--workers", "1", "--batch-size", "64")
            return peak_mib("--workdir", f"w{n}", "train", f"cache{n}.h5", *args, cwd=tmp)

        rows += sweep(crop_sizes, crop, "crop")
        rows += sweep(face_sizes, label, "label")
        rows += sweep(face_sizes, train, "train")
    return rows


if __name__ == "__main__":
    main()
