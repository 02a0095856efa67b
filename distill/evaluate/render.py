"""What an evaluation writes: eval.json, eval.md, a confusion matrix and a predictions CSV per model."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from distill.evaluate.evalset import EvalSet
from distill.storage.files import write_json, write_text


def plot_confusion(result: dict, title: str, out_png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cm = np.array(result["confusion"], dtype=float)
    norm = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(6, 5))
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    names = result["classes"]
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
    ax.set_yticks(range(len(names)), names)
    for i in range(len(names)):
        for j in range(len(names)):
            ax.text(
                j,
                i,
                int(cm[i, j]),
                ha="center",
                va="center",
                fontsize=8,
                color="black" if norm[i, j] < 0.6 else "white",
            )
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(out_png, dpi=100)
    plt.close(fig)


def _cropped(evalset: EvalSet) -> str:
    if not evalset.detected:
        return f"all {len(evalset.keys)} whole images, resized (--no-crop)"
    whole = len(evalset.keys) - evalset.cropped
    if not whole:
        return f"all {evalset.cropped} cropped by the face detector, as in training"
    return (
        f"{evalset.cropped} cropped by the face detector, as in training; {whole} whole images, resized, where it "
        "found no face (a tight crop already, or no face it could see)"
    )


def _ambiguous(evalset: EvalSet) -> str:
    if not evalset.ambiguous:
        return ""
    listed = ", ".join(f"{key} ({' / '.join(labels)})" for key, labels in evalset.ambiguous.items())
    return f"; {len(evalset.ambiguous)} left out, listed with different labels: {listed}"


def markdown_report(dataset: str, results: list[dict], evalset: EvalSet) -> str:
    lines = [
        f"# Evaluation on {dataset}",
        "",
        f"{len(evalset.keys)} labelled faces: {_cropped(evalset)}; {len(evalset.skipped)} unreadable"
        f"{_ambiguous(evalset)}.",
        "",
        "| model | accuracy % | UAR % | macro-F1 % | params | bytes on disk | peak MiB | CPU ms (batch 1) | "
        "img/s (batch 64) | ONNX Runtime ms (batch 1) | ONNX img/s (batch 64) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        s, f = r["scores"], r["facts"]
        disk = f["bytes_on_disk"] if f["bytes_on_disk"] is not None else f["state_dict_bytes"]
        lines.append(
            f"| {r['model']} | {100 * s['accuracy']:.2f} | {100 * s['uar']:.2f} | {100 * s['macro_f1']:.2f} | "
            f"{f['parameters']:,} | {disk:,} | {_mib(f.get('peak_memory_mib_batch1'))} | "
            f"{f['cpu_latency_ms_batch1']:.2f} | "
            f"{f['cpu_throughput_img_s_batch64']:.0f} | {_num(f.get('onnx_latency_ms_batch1'), '.2f')} | "
            f"{_num(f.get('onnx_throughput_img_s_batch64'), '.0f')} |"
        )
    for r in results:
        s = r["scores"]
        lines += [
            "",
            f"## {r['model']}",
            "",
            f"Scored {s['n_scored']} faces over {len(s['classes'])} shared classes in {r.get('runtime', 'torch')}; "
            f"excluded {s['n_excluded']} (data-only classes {s['data_only_classes'] or 'none'}; "
            f"model-only classes {s['model_only_classes'] or 'none'}).",
            "",
            "| class | recall | precision | F1 | support |",
            "|---|---|---|---|---|",
        ]
        lines += [
            f"| {c} | {v['recall']:.3f} | {v['precision']:.3f} | {v['f1']:.3f} | {v['support']} |"
            for c, v in s["per_class"].items()
        ]
    return "\n".join(lines) + "\n"


def _num(value: float | None, fmt: str) -> str:
    return "–" if value is None else format(value, fmt)


def _mib(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}"


def write_eval(out_dir: Path, dataset: str, results: list[dict], evalset: EvalSet, dataset_path: str = "") -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    for i, r in enumerate(results):
        plot_confusion(r["scores"], r["model"], out_dir / f"confusion-{i}.png")
        with open(out_dir / f"predictions-{i}.csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["key", "target", "prediction"])
            names = r["scores"]["classes"]
            keys = [k for k, lab in zip(evalset.keys, evalset.labels, strict=True) if lab in names]
            for k, t, p in zip(keys, r["scores"]["targets"], r["scores"]["predictions"], strict=True):
                w.writerow([k, names[t], names[p]])
    record = {
        "dataset": dataset,
        "dataset_path": dataset_path,
        "results": results,
        "skipped": evalset.skipped,
        "ambiguous": evalset.ambiguous,
    }
    write_json(out_dir / "eval.json", record)
    write_text(out_dir / "eval.md", markdown_report(dataset, results, evalset))
