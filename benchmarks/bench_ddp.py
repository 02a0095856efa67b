"""`distill label` and `distill train` on 2 DDP processes (gloo, CPU) against 1 process, on real faces.

Label: the two caches must hold the same posteriors (max abs difference printed). Train: the same student,
seed, global batch and epochs; the validation agreement and KL of both runs are printed side by side (they
differ by the order of the batches only), with a second single-process run on another seed as the yardstick of
noise, and the wall time of each.
Usage: python benchmarks/bench_ddp.py [FOLDER] [--n 1024] [--epochs 3]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "data" / "faces-unlabeled" / "images"
DDP = ("--accelerator", "cpu", "--devices", "2", "--strategy", "ddp")


def distill(*args: str, cwd: Path) -> float:
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "distill.cli", *args], cwd=cwd, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"distill {' '.join(args)} failed:\n{done.stderr[-2000:]}")
    return time.perf_counter() - start


def final_val(workdir: Path) -> dict:
    (run,) = (workdir / "runs").iterdir()
    metrics = json.loads((run / "summary.json").read_text())["final_metrics"]
    return {"agreement": metrics["val/agreement"], "kl": metrics["val/kl"]}


def main(argv: list[str] | None = None) -> list[dict]:
    ap = argparse.ArgumentParser()
    ap.add_argument("folder", nargs="?", type=Path, default=DEFAULT)
    ap.add_argument("--n", type=int, default=1024, help="photos to crop")
    ap.add_argument("--epochs", type=int, default=3)
    args = ap.parse_args(argv)
    if not args.folder.is_dir():
        sys.exit(f"no image folder at {args.folder}; pass one")
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        photos = tmp / "photos"
        photos.mkdir()
        for p in sorted(args.folder.iterdir())[: args.n]:
            (photos / p.name).symlink_to(p.resolve())
        distill("crop", "photos", "--out", "faces.h5", "--size", "64", cwd=tmp)
        t_one = distill("label", "faces.h5", "--views", "2", "--out", "one.h5", cwd=tmp)
        t_two = distill("label", "faces.h5", "--views", "2", "--out", "two.h5", "--part-rows", "256", *DDP, cwd=tmp)
        with h5py.File(tmp / "one.h5") as a, h5py.File(tmp / "two.h5") as b:
            same_keys = list(a["keys"]) == list(b["keys"])
            diff = float(np.abs(a["views/logits"][()] - b["views/logits"][()]).max())
        print(
            f"label: 1 process {t_one:.0f} s, 2 processes {t_two:.0f} s; "
            f"same faces {same_keys}, max |dlogit| {diff:.1e}"
        )
        common = ("--epochs", str(args.epochs), "--size", "64", "--grey", "--batch-size", "64", "--workers", "1")
        train_one = distill("--workdir", "w1", "train", "two.h5", *common, "--accelerator", "cpu", cwd=tmp)
        distill("--workdir", "w1s", "train", "two.h5", *common, "--accelerator", "cpu", "--seed", "1", cwd=tmp)
        train_two = distill("--workdir", "w2", "train", "two.h5", *common, *DDP, cwd=tmp)
        one, seed1, two = (final_val(tmp / w) for w in ("w1", "w1s", "w2"))
        for title, r, secs in (
            ("1 process", one, train_one),
            ("1 process, seed 1", seed1, None),
            ("2 DDP", two, train_two),
        ):
            took = f"{secs:.0f} s, " if secs else ""
            print(f"train {args.epochs} epochs, {title}: {took}val agreement {r['agreement']:.3f}, KL {r['kl']:.3f}")
        print(
            f"DDP vs 1 process: |d agreement| {abs(two['agreement'] - one['agreement']):.3f}; "
            f"seed noise (seed 0 vs 1): {abs(seed1['agreement'] - one['agreement']):.3f}"
        )
    return [
        {"bench": "label 2 DDP vs 1 process", "unit": "s", "ours": t_two, "bare": t_one, "ratio": t_two / t_one},
        {
            "bench": "train 2 DDP vs 1 process: val agreement",
            "unit": "%",
            "ours": 100 * two["agreement"],
            "bare": 100 * one["agreement"],
            "ratio": two["agreement"] / one["agreement"],
        },
    ]


if __name__ == "__main__":
    main()
