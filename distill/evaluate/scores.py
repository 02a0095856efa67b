"""Logits of a model on faces, and scores over the classes model and data share (torchmetrics)."""

from __future__ import annotations

import numpy as np
import torch
from torchmetrics.functional.classification import (
    multiclass_accuracy,
    multiclass_confusion_matrix,
    multiclass_f1_score,
    multiclass_precision,
    multiclass_recall,
)

from distill.datasets.emotions import CANONICAL, class_alignment
from distill.errors import DistillError
from distill.faces import augment
from distill.progress import progress_bar


def predict(model: torch.nn.Module, pixels: np.ndarray, batch: int = 128, show_progress: bool = False) -> np.ndarray:
    """Logits (N,C) for uint8 faces (N,S,S,3)."""
    outs = []
    with torch.inference_mode(), progress_bar("predict", len(pixels), show_progress) as advance:
        for i in range(0, len(pixels), batch):
            outs.append(model(augment.to_float(pixels[i : i + batch])).float().numpy())
            advance(min(batch, len(pixels) - i))
    return np.concatenate(outs) if outs else np.zeros((0, 0), np.float32)


def score(logits: np.ndarray, labels: list[str], model_classes: list[str], mapping: dict[str, str] | None = None):
    """Scores over the model's classes that name an emotion a dataset can hold (every canonical one, and any other
    label of these faces); argmax is taken among those classes. The class set never depends on which labels the
    scored faces happen to have: a subset (--keys) is scored by the same decision rule as the whole set."""
    seen = set(labels)
    data_classes = list(CANONICAL) + sorted(seen - set(CANONICAL))
    shared, model_only, data_only = class_alignment(model_classes, data_classes, mapping)
    data_only = [c for c in data_only if c in seen]  # a canonical class no face has is no excluded class
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
