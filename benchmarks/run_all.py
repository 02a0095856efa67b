"""Run every benchmark in one process and print a table of the ratios measured in this run.

Usage: python benchmarks/run_all.py (or `make bench`); about 25 min on a 2-core CPU with ../shared present."""

from __future__ import annotations

import datetime as dt
import os
import platform
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_crop  # noqa: E402
import bench_ddp  # noqa: E402
import bench_fit_teacher  # noqa: E402
import bench_label  # noqa: E402
import bench_scale  # noqa: E402
import bench_train  # noqa: E402


def _rows(result: dict | list[dict]) -> list[dict]:
    return result if isinstance(result, list) else [result]


if __name__ == "__main__":
    runs = [
        lambda: bench_crop.main([]),
        lambda: bench_label.main([]),
        lambda: bench_label.main(["--views", "4", "--n", "512"]),
        lambda: bench_train.main([]),
        lambda: bench_ddp.main([]),
        lambda: bench_fit_teacher.main([]),
        lambda: bench_scale.main([]),
    ]
    rows = [row for run in runs for row in _rows(run())]
    print(f"\n{dt.date.today()} {platform.machine()} {os.cpu_count()} cores {platform.processor() or ''}")
    print("| benchmark | ours | reference | ratio |\n|---|---|---|---|")
    for r in rows:
        print(f"| {r['bench']} | {r['ours']:.1f} {r['unit']} | {r['bare']:.1f} {r['unit']} | {r['ratio']:.2f} |")
