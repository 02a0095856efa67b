"""What a `distill fit-teacher` step costs on this machine, by input side and precision, side by side in one run.

fit-teacher's own network (build_net: VGG-S with BatchNorm, channels-last), cross-entropy, backward and AdamW on a
batch of 64 random faces, under bf16 autocast as Lightning's bf16-mixed runs it or in fp32; the fastest of a few
interleaved rounds. It prints ms a step, the minutes a fit of EPOCHS epochs over TRAIN faces would take at that pace
(steps only: validation and loading add a few percent), and the side an unset --size takes here. bf16 on a CPU
without native bf16 is emulated (tens of times slower): measured only with --emulated.
Usage: python benchmarks/bench_fit_teacher.py [--arch vgg_s] [--sides 64 96] [--train 20089] [--epochs 30]
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from distill.datasets.emotions import FER2013
from distill.training.hardware import auto_precision
from distill.training.supervised import build_net, default_side

CLASSES = list(FER2013)  # the seven classes of the fit the figures project


def step_seconds(arch: str, sides: list[int], precisions: list[str], batch: int, rounds: int) -> dict:
    """{(side, precision): fastest seconds of one training step}; every setting warmed up once, then timed in
    turns so that the machine's drift touches each alike."""
    setups = {}
    for side in sides:
        net, _, _ = build_net(arch, CLASSES, side, 1.0, batch_norm=True)
        net = net.to(memory_format=torch.channels_last).train()
        x = torch.randn(batch, 3, side, side).contiguous(memory_format=torch.channels_last)  # (B, 3, side, side)
        y = torch.randint(0, len(CLASSES), (batch,))
        for precision in precisions:
            setups[side, precision] = (net, torch.optim.AdamW(net.parameters(), 1e-3), x, y, precision)
    best = dict.fromkeys(setups, float("inf"))
    for round_ in range(rounds + 1):
        for key, (net, opt, x, y, precision) in setups.items():
            start = time.perf_counter()
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16-mixed"):
                loss = F.cross_entropy(net(x).float(), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            if round_:  # round 0 warms up allocator and kernels
                best[key] = min(best[key], time.perf_counter() - start)
    return best


def main(argv: list[str] | None = None) -> list[dict]:
    ap = argparse.ArgumentParser()
    ap.add_argument("--arch", default="vgg_s")
    ap.add_argument("--sides", type=int, nargs="+", default=[64, 96])
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--train", type=int, default=20_089, help="training faces (FER2013 train's fit split)")
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--emulated", action="store_true", help="time bf16 where the CPU only emulates it")
    args = ap.parse_args(argv)
    native = auto_precision("cpu") == "bf16-mixed"
    precisions = ["32"] + (["bf16-mixed"] if native or args.emulated else [])
    side, why = default_side()
    print(f"threads {torch.get_num_threads()}; native bf16: {native}; an unset --size takes {side} here ({why})")
    best = step_seconds(args.arch, args.sides, precisions, args.batch, args.rounds)
    steps = -(-args.train // args.batch) * args.epochs
    for (s, precision), seconds in best.items():
        minutes = seconds * steps / 60
        print(f"{args.arch} {s} px {precision}: {seconds * 1000:,.0f} ms a step; {steps:,} steps: {minutes:,.0f} min")
    small, large = min(args.sides), max(args.sides)
    rows = [ms_row(f"{args.arch} {large} vs {small} px ({p})", best[large, p], best[small, p]) for p in precisions]
    if "bf16-mixed" in precisions:
        rows.append(ms_row(f"{args.arch} {large} px, bf16-mixed vs fp32", best[large, "bf16-mixed"], best[large, "32"]))
    return rows


def ms_row(what: str, ours: float, bare: float) -> dict:
    """A run_all row: a fit-teacher step's ms against another's, and their ratio."""
    return {
        "bench": f"fit-teacher step, {what}",
        "ours": ours * 1e3,
        "bare": bare * 1e3,
        "unit": "ms",
        "ratio": ours / bare,
    }


if __name__ == "__main__":
    main()
