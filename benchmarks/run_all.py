"""Run every benchmark in one process and print a table of the ratios measured in this run."""

from __future__ import annotations

import datetime as dt
import platform
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_crop  # noqa: E402
import bench_label  # noqa: E402

if __name__ == "__main__":
    rows = [bench_crop.main([]), bench_label.main([]), bench_label.main(["--views", "4", "--n", "512"])]
    print(f"\n{dt.date.today()} {platform.machine()} {platform.processor() or ''}")
    print("| benchmark | ours | bare | ratio |\n|---|---|---|---|")
    for r in rows:
        print(f"| {r['bench']} | {r['ours']:.1f} {r['unit']} | {r['bare']:.1f} {r['unit']} | {r['ratio']:.2f} |")
