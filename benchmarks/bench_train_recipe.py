"""Where the no-flag `distill train` spends its time, and the whole run against an older commit, side by side.

parts: one default training step taken apart (batch 64, the recipe the student's registry entry resolves to over
the cache: views, mixup, each teacher member in PyTorch and in ONNX Runtime, the student's forward and backward at
each side progressive resizing visits, the optimizer, the weight average) plus a validation face, median ms.
whole (--base REV): `distill train --loss kld CACHE` with no other flag, this checkout against commit REV, each in
its own process on the same machine; an older side may be timed over --base-epochs epochs and scaled to the epochs
its recipe runs (its per-epoch cost is constant), this side runs whole (progressive resizing makes early epochs
cheaper than late ones). Both sides' wall times, epochs and best validation agreement are printed.

Usage: python benchmarks/bench_train_recipe.py CACHE [--base be87e77 [--base-epochs 3]] [--steps 8] [--skip-parts]
Run it with the threads the comparison is about (OMP_NUM_THREADS=1 for single-threaded runs side by side).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from baseline import run_cli, worktree  # noqa: E402

from distill.config import TrainConfig  # noqa: E402
from distill.faces import augment  # noqa: E402
from distill.labelling.cache import PosteriorCache  # noqa: E402
from distill.students.model import Student  # noqa: E402
from distill.teachers.build import build_teacher  # noqa: E402
from distill.teachers.runtime import in_onnx_runtime, members  # noqa: E402
from distill.training.defaults import resolve  # noqa: E402
from distill.training.distill_module import mix  # noqa: E402
from distill.training.trainer import make_optimizer  # noqa: E402


def cpu_kind() -> str:
    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    native = [f for f in ("avx512_vnni", "avx512_bf16", "amx_bf16") if f in flags]
    return f"{platform.processor() or platform.machine()}, {', '.join(native) or 'AVX2 only'}"


def median_ms(fn, steps: int) -> float:
    fn()
    fn()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def parts(cache_path: Path, steps: int, batch: int | None = None) -> list[tuple[str, float]]:
    """(part, median ms) of one default step (of `batch` faces: the recipe's without) on random faces at the store's
    side."""
    cache = PosteriorCache(cache_path)
    cfg, _ = resolve(TrainConfig(), [cache])
    n = batch or cfg.batch_size
    made = json.loads(cache.attrs["config"])
    teacher = build_teacher(made["teacher"], made.get("combine", "prob"), made.get("class_map")).eval()
    bf16 = cfg.precision == "bf16-mixed"
    autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16)
    pixels = torch.randint(0, 256, (n, 112, 112, 3), dtype=torch.uint8)
    params = torch.from_numpy(augment.sample_params(n, augment.AugmentConfig(), np.random.default_rng(0)))
    x = augment.views_at(augment.to_float(pixels), params, 112).contiguous(memory_format=torch.channels_last)
    rows = [
        (
            "views (warp, brightness, contrast)",
            median_ms(lambda: augment.views_at(augment.to_float(pixels), params, 112), steps),
        ),
        ("mixup", median_ms(lambda: mix(x, cfg.mixup or 0.4), steps)),
    ]
    for member in members(teacher):
        with torch.no_grad(), autocast:
            rows.append((f"teacher {member.spec}, PyTorch", median_ms(lambda m=member: m(x), steps)))
    in_onnx_runtime(teacher, torch.get_num_threads())
    for member in members(teacher):
        with torch.no_grad():
            rows.append((f"teacher {member.spec}, ONNX Runtime", median_ms(lambda m=member: m(x), steps)))
    student = Student(cfg.student, cache.classes, cfg.size, cfg.grey, cfg.small_input, cfg.width, cfg.framing)
    student.to(memory_format=torch.channels_last)
    optimizer = make_optimizer(cfg.optimizer, list(student.parameters()), cfg.lr, cfg.weight_decay)
    for side in sorted({cfg.start_size, (cfg.start_size + cfg.size) // 16 * 8, cfg.size}):
        student.preprocess = replace(student.preprocess, size=side)

        def forward_backward():
            with autocast:
                loss = student(x).float().logsumexp(1).mean()
            loss.backward()

        rows.append((f"student forward + backward at {side} px", median_ms(forward_backward, steps)))
    rows.append(("optimizer step", median_ms(optimizer.step, steps)))
    weights = [p.detach() for p in student.parameters()]
    average = [w.clone() for w in weights]
    rows.append(
        ("weight average (EMA) update", median_ms(lambda: torch._foreach_lerp_(average, weights, 0.002), steps))
    )
    student.eval()
    with torch.no_grad(), autocast:
        rows.append(("validation: student forward at full side", median_ms(lambda: student(x), steps)))
    return rows


def run_train(code: Path | None, cache: Path, work: Path, epochs: int | None, more: list[str]) -> dict:
    """`distill train --loss kld CACHE` (plus --epochs when given) from this checkout or the one at `code`, timed:
    wall seconds, the epochs it resolved and ran, each epoch's seconds (training and validation), best agreement."""
    args = ["--workdir", str(work), "train", "--loss", "kld", str(cache), *more]
    args += ["--epochs", str(epochs)] if epochs else []
    start = time.perf_counter()
    if code is None:
        subprocess.run([sys.executable, "-m", "distill.cli", *args], check=True, capture_output=True, text=True)
    else:
        run_cli(code, args, cwd=code)
    seconds = time.perf_counter() - start
    run = max((work / "runs").iterdir())
    summary = json.loads((run / "summary.json").read_text())
    with open(run / "logs" / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    epoch_seconds = [float(r["train/epoch_seconds"]) for r in rows if r.get("train/epoch_seconds")]
    return {
        "seconds": seconds,
        "epochs_resolved": json.loads((run / "config.json").read_text())["train"]["epochs"],
        "epochs_run": len(epoch_seconds),
        "epoch_seconds": epoch_seconds,
        "agreement": summary.get("best_val_agreement"),
    }


def run_train_epochs(code: Path, cache: Path) -> int:
    """The epochs the checkout at `code` resolves for a no-flag run over `cache` (its own recipe)."""
    script = (
        "import sys; from distill.labelling.cache import PosteriorCache; from distill.config import TrainConfig; "
        "from distill.training.defaults import resolve; "
        "print(resolve(TrainConfig(), [PosteriorCache(sys.argv[1])])[0].epochs)"
    )
    env = {**os.environ, "PYTHONPATH": str(code)}
    done = subprocess.run(
        [sys.executable, "-c", script, str(cache.resolve())],
        env=env,
        cwd=code,
        capture_output=True,
        text=True,
        check=True,
    )
    return int(done.stdout.split()[-1])


def whole(cache: Path, base: str, base_epochs: int, more: list[str], keep: Path | None, base_only: bool) -> None:
    """The older commit over base_epochs epochs, scaled to its recipe's epochs (its cost per epoch is constant);
    this checkout's whole no-flag run."""
    resolved, _ = resolve(TrainConfig(), [PosteriorCache(cache)])
    with tempfile.TemporaryDirectory() as tmp, worktree(base) as old_code:
        tmp = keep or tmp  # --keep: the runs stay there, to be scored
        old = run_train(old_code, cache, Path(tmp) / "old", base_epochs, more)
        old_recipe = run_train_epochs(old_code, cache)
        new = None if base_only else run_train(None, cache, Path(tmp) / "new", None, more)
    per_epoch = statistics.mean(old["epoch_seconds"])
    start_up = old["seconds"] - sum(old["epoch_seconds"])
    print("| side | epochs | min per epoch | wall min | best val agreement |\n|---|---|---|---|---|")
    print(
        f"| {base} (timed over {base_epochs} epochs, scaled) | {old_recipe} | {per_epoch / 60:.2f} | "
        f"{(start_up + old_recipe * per_epoch) / 60:.1f} | - |"
    )
    if new is None:
        return
    print(
        f"| this checkout, no flags ({resolved.start_size}->{resolved.size} px) | {new['epochs_run']} of "
        f"{new['epochs_resolved']} | {statistics.mean(new['epoch_seconds']) / 60:.2f} | {new['seconds'] / 60:.1f} | "
        f"{new['agreement']:.4f} |"
    )
    print(
        f"wall time ratio (this / {base} at {old_recipe} epochs): "
        f"{new['seconds'] / (start_up + old_recipe * per_epoch):.2f}"
    )


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("cache", type=Path, help="a posterior cache of `distill label` (its store beside it)")
    ap.add_argument("--steps", type=int, default=8, help="timed repetitions of each part")
    ap.add_argument("--base", help="an older commit to time the whole no-flag train against")
    ap.add_argument("--base-epochs", type=int, default=3, help="epochs the older side is timed over, then scaled")
    ap.add_argument("--more", default="", help="more train flags for both sides (a smoke test: --more='--limit 300')")
    ap.add_argument("--skip-parts", action="store_true", help="time the whole runs only")
    ap.add_argument("--batch", type=int, help="the parts at this batch (default: the recipe's)")
    ap.add_argument("--base-only", action="store_true", help="time the older commit's side only")
    ap.add_argument("--keep", type=Path, help="a folder to keep both sides' runs in (default: deleted)")
    args = ap.parse_args(argv)
    print(f"CPU: {cpu_kind()}; torch threads {torch.get_num_threads()}")
    if not args.skip_parts:
        rows = parts(args.cache, args.steps, args.batch)
        print(f"| part of a default step (batch {args.batch or 'of the recipe'}) | ms |\n|---|---|")
        for name, ms in rows:
            print(f"| {name} | {ms:.1f} |")
    if args.base:
        whole(args.cache, args.base, args.base_epochs, shlex.split(args.more), args.keep, args.base_only)


if __name__ == "__main__":
    main()
