"""Training, labelling and inference speed against an older commit, side by side in one run, and where a step's time
goes against the machine's measured peak.

- epoch: `distill train` with the recipe's flags (T=1, grey 64, --balance 0.5, an EMA), same seed, cache and
  budget, run by the old commit's code and by this checkout's; median seconds per epoch and validation agreement.
- label: `distill label --views 2` of the same store by both.
- anatomy: FLOPs per face of a training step (torch's FlopCounterMode, forward + backward), the GFLOP/s the real
  epochs attain against a matmul's on this CPU, and the step's phases (torch.profiler record_function totals).
- inference: the student in eager PyTorch against its inference form (BatchNorm folded, channels-last).
Usage: python benchmarks/bench_speed.py CACHE [--base REV] [--limit 3000] [--epochs 6] [--label-store STORE]
"""

from __future__ import annotations

import argparse
import csv
import statistics
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from baseline import run_cli, worktree

from distill.config import TrainConfig
from distill.evaluate.speed import compare_latency_on
from distill.labelling.cache import PosteriorCache
from distill.students.model import Student
from distill.training.defaults import resolve
from distill.training.train import make_data

BASE = "4f55c46"  # the commit issue #23 was filed against
# the recipe's flags, with a weight average over ~100 steps: the budget here is a few hundred steps, and 0.998 (an
# average over 2 epochs of 13.8k faces) would still hold mostly the initial weights at its end
RECIPE = ["--loss", "kld", "--temperature", "1", "--grey", "--size", "64", "--balance", "0.5", "--ema", "0.99"]
ROOT = Path(__file__).resolve().parents[1]


def epochs(code: Path, cache: Path, work: Path, limit: int, n: int) -> dict:
    """Median epoch seconds (after the first) and the last validation agreement of one `distill train` run."""
    args = ["--workdir", str(work), "train", str(cache), *RECIPE, "--limit", str(limit), "--epochs", str(n)]
    run_cli(code, args, cwd=work.parent)
    rows = list(csv.DictReader(open(next(work.glob("runs/*/logs/metrics.csv")))))
    seconds = [float(r["train/epoch_seconds"]) for r in rows if r.get("train/epoch_seconds")]
    agreement = [float(r["val/agreement"]) for r in rows if r.get("val/agreement")]
    return {"epoch_s": statistics.median(seconds[1:] or seconds), "val_agreement": agreement[-1]}


def label_seconds(code: Path, store: Path, out: Path) -> float:
    out.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    run_cli(code, ["--workdir", str(out.parent), "label", str(store), "--views", "2", "--out", str(out)], out.parent)
    return time.perf_counter() - start


def matmul_gflops(dtype: torch.dtype, n: int = 2048, repeats: int = 5) -> float:
    a = torch.randn(n, n).to(dtype)
    a @ a
    start = time.perf_counter()
    for _ in range(repeats):
        a @ a
    return 2 * n**3 * repeats / (time.perf_counter() - start) / 1e9


def step_flops_per_face(student: Student, side: int, batch: int = 64) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    x = torch.rand(batch, 3, side, side)
    with FlopCounterMode(display=False) as counter:
        F.log_softmax(student(x), 1).sum().backward()
    student.zero_grad()
    return counter.get_total_flops() / batch


def anatomy(cache: Path, limit: int, steps: int = 8) -> dict[str, float]:
    """ms per step of each phase (fetch, views, forward, backward, optimizer, weight average) of a replica of this
    checkout's training step outside Lightning (same data, student, optimizer and EMA), from torch.profiler's
    record_function totals."""
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
    from torch.profiler import profile, record_function

    from distill.faces import augment

    cfg = TrainConfig(loss="kld", temperature=1.0, grey=True, size=64, balance=0.5, ema=0.998, limit=limit)
    sources = [(PosteriorCache(cache).store_path, cache)]
    cfg, _ = resolve(cfg, [PosteriorCache(cache)])
    data = make_data(sources, cfg)
    student = Student(cfg.student, data.classes, cfg.size, cfg.grey).to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(student.parameters(), 1e-3, fused=True)
    ema = AveragedModel(student, multi_avg_fn=get_ema_multi_avg_fn(0.998), use_buffers=True)
    batches = iter(data.train_dataloader())
    phases = ("fetch", "views", "forward", "backward", "optimizer", "weight average")
    with profile() as prof:
        for _ in range(steps):
            with record_function("fetch"):
                batch = next(batches)
            with record_function("views"):
                x = augment.views_at(augment.to_float(batch["pixels"]), batch["params"], cfg.size)
                x = x.contiguous(memory_format=torch.channels_last)
            with record_function("forward"):
                out = student(x)
                loss = F.kl_div(
                    out.log_softmax(1), batch["teacher_logits"].log_softmax(1), reduction="batchmean", log_target=True
                )
            with record_function("backward"):
                opt.zero_grad()
                loss.backward()
            with record_function("optimizer"):
                opt.step()
            with record_function("weight average"):
                ema.update_parameters(student)
    totals = {e.key: e.cpu_time_total / 1000 / steps for e in prof.key_averages() if e.key in phases}
    return {name: totals.get(name, 0.0) for name in phases}


def inference(size: int = 64) -> dict[str, float]:
    student = Student("squeezenet1_1_bn", list("abcdefg"), size, grey=True).eval()
    fast = Student("squeezenet1_1_bn", list("abcdefg"), size, grey=True).eval()
    fast.load_state_dict(student.state_dict())
    fast.for_inference()
    out = {}
    for batch in (1, 128):
        x = torch.rand(batch, 3, size, size)
        ms = compare_latency_on({"eager": student, "inference": fast}, x, rounds=5, per_round=5 if batch > 1 else 30)
        out |= {f"eager b{batch}": ms["eager"], f"inference b{batch}": ms["inference"]}
    return out


def main(argv: list[str] | None = None) -> list[dict]:
    ap = argparse.ArgumentParser()
    ap.add_argument("cache", type=Path, help="a posterior cache with views (`distill label --views N`)")
    ap.add_argument("--base", default=BASE, help="the older commit to compare with")
    ap.add_argument("--limit", type=int, default=3000, help="training faces per epoch")
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--label-store", type=Path, help="face store to label (default: the cache's)")
    args = ap.parse_args(argv)
    cache = args.cache.resolve()
    store = (args.label_store or PosteriorCache(cache).store_path).resolve()
    rows = []
    with tempfile.TemporaryDirectory() as name, worktree(args.base) as base:
        tmp = Path(name)
        old = epochs(base, cache, tmp / "old", args.limit, args.epochs)
        new = epochs(ROOT, cache, tmp / "new", args.limit, args.epochs)
        print(
            f"epoch of {args.limit:,} faces: {args.base} {old['epoch_s']:.2f} s, now {new['epoch_s']:.2f} s "
            f"({old['epoch_s'] / new['epoch_s']:.2f}x); val agreement after {args.epochs} epochs: "
            f"{old['val_agreement']:.4f} then, {new['val_agreement']:.4f} now",
            flush=True,
        )
        label_old = label_seconds(base, store, tmp / "label-old" / "c.h5")
        label_new = label_seconds(ROOT, store, tmp / "label-new" / "c.h5")
    print(f"label --views 2 of {store}: {label_old:.1f} s then, {label_new:.1f} s now ({label_old / label_new:.2f}x)")
    flops = step_flops_per_face(Student("squeezenet1_1_bn", list("abcdefg"), 64, grey=True), 64)
    attained = flops * args.limit / new["epoch_s"] / 1e9
    peak = matmul_gflops(torch.float32)
    print(
        f"{flops / 1e6:.0f} MFLOP a face (forward + backward); epochs attain {attained:.1f} GFLOP/s now, "
        f"{flops * args.limit / old['epoch_s'] / 1e9:.1f} then; fp32 matmul peak {peak:.0f} GFLOP/s"
    )
    phases = anatomy(cache, args.limit)
    print("step phases (ms): " + ", ".join(f"{k} {v:.1f}" for k, v in phases.items()))
    speeds = inference()
    print("student latency (ms): " + ", ".join(f"{k} {v:.2f}" for k, v in speeds.items()))
    ms = {"unit": "s"}
    rows += [
        {
            "bench": f"train epoch ({args.limit:,} faces): now vs {args.base}",
            "ours": new["epoch_s"],
            "bare": old["epoch_s"],
        }
        | ms,
        {"bench": f"label --views 2: now vs {args.base}", "ours": label_new, "bare": label_old} | ms,
        {
            "bench": "student b128: inference form vs eager",
            "ours": speeds["inference b128"],
            "bare": speeds["eager b128"],
            "unit": "ms",
        },
    ]
    for row in rows:
        row["ratio"] = row["ours"] / row["bare"]
    return rows


if __name__ == "__main__":
    main()
