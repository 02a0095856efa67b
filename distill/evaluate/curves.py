"""Training curves (loss and teacher agreement per epoch) as PNG, like the papers' error-rate figures."""

from __future__ import annotations

import csv
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def read_epoch_metrics(metrics_csv: Path) -> dict[str, list[tuple[int, float]]]:
    """{metric: [(epoch, value), ...]} from Lightning's CSVLogger file."""
    series: dict[str, list[tuple[int, float]]] = {}
    if not metrics_csv.is_file():
        return series
    with open(metrics_csv, newline="") as f:
        for row in csv.DictReader(f):
            for key, value in row.items():
                if key not in ("epoch", "step") and value not in ("", None):
                    series.setdefault(key, []).append((int(float(row["epoch"])), float(value)))
    return series


def plot_curves(metrics_csv: Path, out_png: Path, metrics: tuple[str, str] = ("loss", "agreement")) -> Path | None:
    series = read_epoch_metrics(metrics_csv)
    if not series:
        return None
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, metric in zip(axes, metrics, strict=True):
        for stage in ("train", "val"):
            points = series.get(f"{stage}/{metric}")
            if points:
                ax.plot([p[0] + 1 for p in points], [p[1] for p in points], marker="o", label=stage)
        ax.set_xlabel("epoch")
        ax.set_ylabel("agreement with teacher" if metric == "agreement" else metric)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    out_png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_png, dpi=100)
    plt.close(fig)
    return out_png
