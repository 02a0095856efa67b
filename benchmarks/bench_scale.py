"""Peak memory of `distill crop`, `label` and `train` as the number of images grows (target: flat).

Each command runs as its own process, as a user runs it; its peak memory is the largest sum of proportional set
sizes over it and the processes it starts (crop's detection process, DataLoader workers), sampled from /proc.
Synthetic inputs: copies of the packaged demo faces with noise, as photos for crop (MTCNN's speed bounds that
sweep to tens of thousands) and written straight into face stores for label and train (up to 100k faces); train
runs a fixed number of steps, so only the size of the pool changes.
Usage: python benchmarks/bench_scale.py [--crop 1000,4000,16000] [--faces 1000,10000,100000]
"""

from __future__ import annotations

import argparse
import contextlib
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from distill.datasets.demo import demo_samples
from distill.faces.store import FaceRow, ManifestRow, finalize, write_part

PART = 2048  # faces per store part, as `distill crop` writes them


def _process_tree(root: int) -> list[int]:
    """root and all its descendants, from /proc (Linux)."""
    parent = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            parent[int(stat.parent.name)] = int(fields[1])
    tree, frontier = [root], [root]
    while frontier:
        frontier = [pid for pid, ppid in parent.items() if ppid in frontier]
        tree += frontier
    return tree


def _pss_kib(pid: int) -> int:
    """Proportional set size: pages shared between processes (forked DataLoader workers) are counted once."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    return 0


def peak_mib(*args: str, cwd: Path) -> tuple[float, float]:
    """(peak memory MiB, seconds) of one `distill` command: the largest sum of PSS over the command and every
    process it starts (crop's detection process, DataLoader workers), sampled every 0.1 s."""
    start = time.perf_counter()
    command = [sys.executable, "-m", "distill.cli", *args]
    proc = subprocess.Popen(command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    peak = 0
    while proc.poll() is None:
        peak = max(peak, sum(_pss_kib(pid) for pid in _process_tree(proc.pid)))
        time.sleep(0.1)
    if proc.returncode != 0:
        raise SystemExit(f"distill {' '.join(args)} failed:\n{proc.stderr.read()[-2000:]}")
    return peak / 1024, time.perf_counter() - start


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
    ap.add_argument("--crop", default="1000,4000,16000", help="photo counts for the crop sweep")
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
