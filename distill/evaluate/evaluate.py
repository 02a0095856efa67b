"""`distill eval`: scores of teachers and students on a labelled set, with an explicit class mapping."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torchmetrics.functional.classification import (
    multiclass_accuracy,
    multiclass_confusion_matrix,
    multiclass_f1_score,
    multiclass_precision,
    multiclass_recall,
)

from distill import augment
from distill.datasets.emotions import CANONICAL, class_alignment, parse_mapping
from distill.datasets.readers import Sample
from distill.errors import DistillError
from distill.faces.images import BadImage, load_rgb
from distill.fileio import write_json, write_text
from distill.progress import progress_bar


@dataclass
class EvalSet:
    """Faces (N,S,S,3) uint8 and their canonical labels, with what could not be used."""

    keys: list[str]
    pixels: np.ndarray
    labels: list[str]
    skipped: dict[str, str]
    cropped: int


def only_keys(samples: list[Sample], keys_file: Path) -> list[Sample]:
    """The samples whose keys a file lists, one a line (e.g. the test-keys.txt of a fitted teacher)."""
    if not keys_file.is_file():
        raise DistillError(f"keys file {keys_file} not found")
    wanted = {line.strip() for line in keys_file.read_text().splitlines() if line.strip()}
    kept = [s for s in samples if s.key in wanted]
    if not kept:
        raise DistillError(f"none of the {len(wanted)} keys in {keys_file} is an image of this dataset")
    return kept


def load_uncropped(samples: list[Sample], size: int) -> EvalSet:
    """Resize each whole image to size x size (for sets that are already tight face crops)."""
    from PIL import Image

    keys, pixels, labels, skipped = [], [], [], {}
    for s in samples:
        if s.label is None:
            continue
        try:
            img = Image.fromarray(s.pixels).convert("RGB") if s.pixels is not None else load_rgb(s.path, 1)[0]
        except BadImage as err:
            skipped[s.key] = str(err)
            continue
        keys.append(s.key)
        pixels.append(np.asarray(img.resize((size, size), Image.Resampling.BILINEAR)))
        labels.append(s.label)
    return EvalSet(keys, np.stack(pixels) if pixels else np.zeros((0, size, size, 3), np.uint8), labels, skipped, 0)


def load_cropped(samples: list[Sample], store_path: Path, size: int) -> EvalSet:
    """MTCNN-crop with the training settings (store reused across runs); faceless images fall back to the
    whole image, counted in the report, so every labelled image is scored."""
    from distill.config import CropConfig
    from distill.faces.crop import NoFaces, crop
    from distill.faces.store import FaceStore

    labelled = [s for s in samples if s.label is not None]
    try:
        crop(Path(store_path.stem), store_path, CropConfig(size=size), reader="eval", samples=labelled)
    except NoFaces:  # not one face found: every image is scored whole
        return load_uncropped(labelled, size)
    store = FaceStore(store_path)
    row = {k: i for i, k in enumerate(store.keys)}
    missing = [s for s in labelled if s.key not in row]
    fallback = load_uncropped(missing, size)
    keys = [s.key for s in labelled if s.key in row] + fallback.keys
    rows = np.array([row[s.key] for s in labelled if s.key in row], dtype=np.int64)
    pixels = np.concatenate([_rows_in_order(store, rows), fallback.pixels])
    labels = [s.label for s in labelled if s.key in row] + fallback.labels
    return EvalSet(keys, pixels, labels, fallback.skipped, len(keys) - len(fallback.keys))


def _rows_in_order(store, rows: np.ndarray) -> np.ndarray:
    """store pixels at `rows` in the given order (h5py fancy indexing needs increasing, unique indices)."""
    if len(rows) == 0:
        return np.zeros((0, store.size, store.size, 3), np.uint8)
    unique, inverse = np.unique(rows, return_inverse=True)
    return store.pixels(unique)[inverse]


def predict(model: torch.nn.Module, pixels: np.ndarray, batch: int = 128, show_progress: bool = False) -> np.ndarray:
    """Logits (N,C) for uint8 faces (N,S,S,3)."""
    outs = []
    with torch.inference_mode(), progress_bar("predict", len(pixels), show_progress) as advance:
        for i in range(0, len(pixels), batch):
            outs.append(model(augment.to_float(pixels[i : i + batch])).float().numpy())
            advance(min(batch, len(pixels) - i))
    return np.concatenate(outs) if outs else np.zeros((0, 0), np.float32)


def score(logits: np.ndarray, labels: list[str], model_classes: list[str], mapping: dict[str, str] | None = None):
    """Scores over the classes both sides share; argmax is taken among those classes only."""
    data_classes = [c for c in CANONICAL if c in set(labels)] + sorted(set(labels) - set(CANONICAL))
    shared, model_only, data_only = class_alignment(model_classes, data_classes, mapping)
    if not shared:
        raise DistillError(
            f"model classes {model_classes} and data classes {data_classes} share none; "
            "give --class-map model_class=data_class"
        )
    names = [n for _, _, n in shared]
    keep = np.array([lab in names for lab in labels])
    y = torch.tensor([names.index(lab) for lab, k in zip(labels, keep, strict=True) if k])
    sub = torch.from_numpy(logits[keep][:, [m for m, _, _ in shared]])
    n = len(names)
    pred = sub.argmax(1)
    per_class = {
        name: {"recall": float(r), "precision": float(p), "f1": float(f), "support": int((y == i).sum())}
        for i, (name, r, p, f) in enumerate(
            zip(
                names,
                multiclass_recall(pred, y, n, average="none"),
                multiclass_precision(pred, y, n, average="none"),
                multiclass_f1_score(pred, y, n, average="none"),
                strict=True,
            )
        )
    }
    present = [c for c in range(n) if (y == c).any()]
    recalls = multiclass_recall(pred, y, n, average="none")
    f1s = multiclass_f1_score(pred, y, n, average="none")
    return {
        "n_scored": int(keep.sum()),
        "n_excluded": int((~keep).sum()),
        "classes": names,
        "model_only_classes": model_only,
        "data_only_classes": data_only,
        "accuracy": float(multiclass_accuracy(pred, y, n, average="micro")),
        # macro over classes present in the data (a class with no support has no recall to average)
        "uar": float(recalls[present].mean()),
        "macro_f1": float(f1s[present].mean()),
        "per_class": per_class,
        "confusion": multiclass_confusion_matrix(pred, y, n).tolist(),
        "predictions": pred.tolist(),
        "targets": y.tolist(),
    }


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


def markdown_report(dataset: str, results: list[dict], evalset: EvalSet) -> str:
    lines = [
        f"# Evaluation on {dataset}",
        "",
        f"{len(evalset.keys)} labelled faces ({evalset.cropped} MTCNN-cropped, the rest whole images); "
        f"{len(evalset.skipped)} unreadable.",
        "",
        "| model | accuracy % | UAR % | macro-F1 % | params | bytes on disk | peak MiB | CPU ms (batch 1) | "
        "img/s (batch 64) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        s, f = r["scores"], r["facts"]
        disk = f["bytes_on_disk"] if f["bytes_on_disk"] is not None else f["state_dict_bytes"]
        lines.append(
            f"| {r['model']} | {100 * s['accuracy']:.2f} | {100 * s['uar']:.2f} | {100 * s['macro_f1']:.2f} | "
            f"{f['parameters']:,} | {disk:,} | {_mib(f.get('peak_memory_mib_batch1'))} | "
            f"{f['cpu_latency_ms_batch1']:.2f} | "
            f"{f['cpu_throughput_img_s_batch64']:.0f} |"
        )
    for r in results:
        s = r["scores"]
        lines += [
            "",
            f"## {r['model']}",
            "",
            f"Scored {s['n_scored']} faces over {len(s['classes'])} shared classes; "
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
    record = {"dataset": dataset, "dataset_path": dataset_path, "results": results, "skipped": evalset.skipped}
    write_json(out_dir / "eval.json", record)
    write_text(out_dir / "eval.md", markdown_report(dataset, results, evalset))


def evaluate_model(
    name: str,
    model: torch.nn.Module,
    evalset: EvalSet,
    mapping: str | None,
    file: Path | None,
    speed_size: int,
    load_args: tuple = (),
) -> dict:
    """Scores and model facts; load_args (combine, ensemble map) rebuild the model for the peak-memory probe."""
    logits = predict(model, evalset.pixels, show_progress=True)
    scores = score(logits, evalset.labels, list(model.classes), parse_mapping(mapping))
    facts = _facts(model, file, speed_size)
    from distill.evaluate.speed import peak_memory_mib

    facts["peak_memory_mib_batch1"] = peak_memory_mib(name, speed_size, *load_args)
    return {"model": name, "describe": model.describe(), "scores": scores, "facts": facts}


def _facts(model, file, size):
    from distill.evaluate.speed import model_facts

    return model_facts(model, size, file)


def evaluate_in(ws, dataset: str, data: Path | None, specs: list[str], keys: Path | None, cfg) -> tuple[str, Path]:
    """`distill eval`: score the models (default: the workspace's newest student or compressed model; every one
    checked before any runs) on a labelled set, cropped under evals/ (never training material); returns the
    report's headline and the path of eval.md."""
    from distill.artifacts import load_models
    from distill.datasets.readers import dataset_root, read_dataset
    from distill.workspace import store_name

    specs = specs or [str(ws.newest_model())]
    models = load_models(specs, cfg.combine, cfg.ensemble_map)
    samples, reader = read_dataset(dataset, data)
    if keys is not None:
        samples = only_keys(samples, keys)
    root = dataset_root(dataset, data)
    evalset = load_cropped(samples, ws.eval_store(reader, root, cfg.size), cfg.size) if cfg.crop else None
    evalset = evalset or load_uncropped(samples, cfg.size)
    if not evalset.keys:
        raise DistillError(f"no labelled, readable image in {root}")
    load_args = (cfg.combine, cfg.ensemble_map)
    results = [
        evaluate_model(spec, net, evalset, cfg.class_map, file, cfg.size, load_args)
        for spec, (net, file) in zip(specs, models, strict=True)
    ]
    name = f"{store_name(root)} ({reader})"
    out_dir = ws.new_run_dir("eval", f"{reader}-{store_name(root)}")
    write_eval(out_dir, name, results, evalset, str(root.resolve()))
    return (out_dir / "eval.md").read_text().split("\n## ")[0], out_dir / "eval.md"
