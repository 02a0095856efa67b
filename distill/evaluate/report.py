"""The report: one table over training runs and evaluations, in the papers' shapes.

Table 2 shape: per evaluated model, training time per epoch, CPU inference time, size, accuracy, UAR.
Table 3 shape: per teacher, the teacher's own scores beside students trained with each loss from its cache.
"""

from __future__ import annotations

import json
from pathlib import Path

from distill.evaluate.curves import read_epoch_metrics


def run_facts(run_dir: Path) -> dict:
    """What a training run says about itself: student, loss, teacher, epochs, seconds per epoch, agreement."""
    config = json.loads((run_dir / "config.json").read_text())
    summary_path = run_dir / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.is_file() else {}
    train = config.get("train", {})
    return {
        "run": run_dir.name,
        "student": train.get("student"),
        "loss": train.get("loss"),
        "teacher": config.get("teacher", {}).get("spec"),
        "epochs": train.get("epochs"),
        "seconds_per_epoch": seconds_per_epoch(run_dir),
        "val_agreement": summary.get("best_val_agreement"),
        "curves": str(run_dir / "curves.png") if (run_dir / "curves.png").is_file() else None,
    }


def seconds_per_epoch(train_dir: Path | None) -> float | None:
    """Mean wall time of a training epoch (students and fitted teachers log it), None when not recorded."""
    if train_dir is None:
        return None
    logs = [train_dir / "logs" / "metrics.csv", *sorted(train_dir.glob("rounds/*/logs/metrics.csv"))]  # compress
    seconds = [v for log in logs for _, v in read_epoch_metrics(log).get("train/epoch_seconds", [])]
    return sum(seconds) / len(seconds) if seconds else None


def _trained_in(describe: dict) -> Path | None:
    """The fit-teacher folder of a teacher spec that names its teacher.pt."""
    for part in str(describe.get("spec", "")).replace("?weights=", ":").split(":"):
        if part.endswith("teacher.pt") and Path(part).is_file():
            return Path(part).parent
    return None


def eval_rows(eval_files: list[Path]) -> list[dict]:
    """The newest score of each (model, dataset), linked to its training run when the model is one; a dataset is
    known by its path (two sets read by the same reader are two datasets)."""
    latest: dict[tuple[str, str], dict] = {}
    for path in eval_files:  # oldest first: newer evaluations overwrite older ones
        report = json.loads(path.read_text())
        for r in report["results"]:
            run = _run_of(r["model"])
            folder = _folder_of(r["model"])
            name = folder.name if folder else r["model"]
            latest[(name, report.get("dataset_path") or report["dataset"])] = {
                "model": name,
                "dataset": report["dataset"],
                "run": run,
                "accuracy": r["scores"]["accuracy"],
                "uar": r["scores"]["uar"],
                "macro_f1": r["scores"]["macro_f1"],
                "bytes": r["facts"]["bytes_on_disk"] or r["facts"]["state_dict_bytes"],
                "cpu_ms": r["facts"]["cpu_latency_ms_batch1"],
                "peak_mib": r["facts"].get("peak_memory_mib_batch1"),
                "teacher_spec": r["describe"].get("spec") if run is None else None,
                "seconds_per_epoch": seconds_per_epoch(folder or _trained_in(r["describe"])),
            }
    return list(latest.values())


def _folder_of(model: str) -> Path | None:
    """The run or compressed-model folder a scored model came from (None for teacher specs)."""
    path = Path(model)
    folder = path if path.is_dir() else path.parent
    return folder if path.exists() and (folder / "summary.json").is_file() else None


def _run_of(model: str) -> Path | None:
    path = Path(model)
    run = path if path.is_dir() else path.parent
    return run if (run / "config.json").is_file() and (run / "student.pt").exists() else None


def _fmt(value, spec: str, scale: float = 1.0) -> str:
    return "–" if value is None else format(value * scale, spec)


def build_report(root: Path, run_dirs: list[Path], eval_files: list[Path]) -> tuple[str, list[dict]]:
    """(markdown, score rows) of the runs and evaluations (eval.json files, oldest first) of the folder `root`."""
    runs = {run.name: run_facts(run) for run in run_dirs}
    rows = eval_rows(eval_files)
    lines = ["# distill report", "", f"Workspace `{root}`: {len(runs)} training runs, {len(rows)} scores.", ""]
    lines += ["## Models (Table 2 shape)", ""]
    lines += [
        "| model | dataset | train s/epoch | CPU ms (batch 1) | size MiB | peak MiB | accuracy % | UAR % | "
        "macro-F1 % |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in sorted(rows, key=lambda r: (r["dataset"], -r["accuracy"])):
        lines.append(
            f"| {r['model']} | {r['dataset']} | {_fmt(r['seconds_per_epoch'], '.1f')} | {r['cpu_ms']:.2f} | "
            f"{r['bytes'] / 2**20:.2f} | {_fmt(r['peak_mib'], '.1f')} | {100 * r['accuracy']:.2f} | "
            f"{100 * r['uar']:.2f} | {100 * r['macro_f1']:.2f} |"
        )
    lines += ["", "## Students by teacher and loss (Table 3 shape)", ""]
    lines += ["| teacher | student | loss | epochs | val agreement % | dataset | accuracy % | UAR % |"]
    lines += ["|---|---|---|---|---|---|---|---|"]
    scored: dict[str, list[dict]] = {}
    for r in rows:
        if r["run"] is not None:
            scored.setdefault(r["model"], []).append(r)
    for teacher in sorted({str(f["teacher"]) for f in runs.values()}):
        for r in rows:
            if r["teacher_spec"] == teacher:
                lines.append(
                    f"| {teacher} | (teacher) | – | – | – | {r['dataset']} | {100 * r['accuracy']:.2f} | "
                    f"{100 * r['uar']:.2f} |"
                )
        for name, f in runs.items():
            if str(f["teacher"]) == teacher:
                for s in scored.get(name, [{}]):  # one row per dataset the student was scored on
                    lines.append(
                        f"| {teacher} | {f['student']} ({name}) | {f['loss']} | {f['epochs']} | "
                        f"{_fmt(f['val_agreement'], '.1f', 100)} | {s.get('dataset', '–')} | "
                        f"{_fmt(s.get('accuracy'), '.2f', 100)} | {_fmt(s.get('uar'), '.2f', 100)} |"
                    )
    curves = [f"- {n}: `{f['curves']}`" for n, f in runs.items() if f["curves"]]
    if curves:
        lines += ["", "## Training curves", "", *curves]
    return "\n".join(lines) + "\n", rows


def plot_scores(rows: list[dict], out_png: Path) -> Path | None:
    if not rows:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = sorted(rows, key=lambda r: r["accuracy"])
    names = [f"{r['model'][-40:]} ({r['dataset']})" for r in rows]
    fig, ax = plt.subplots(figsize=(9, 0.45 * len(rows) + 1.5))
    y = range(len(rows))
    ax.barh([i + 0.2 for i in y], [100 * r["accuracy"] for r in rows], 0.4, label="accuracy")
    ax.barh([i - 0.2 for i in y], [100 * r["uar"] for r in rows], 0.4, label="UAR")
    ax.set_yticks(list(y), names, fontsize=8)
    ax.set_xlabel("%")
    ax.legend()
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(out_png, dpi=100)
    plt.close(fig)
    return out_png
