"""`distill fit-teacher`: supervised training of a teacher (VGG-S or any timm net) on a labelled face store.

The split is by subject where the layout has subjects (RaFD), else by image, picked by a hash of the group so
it is stable; the held-out test keys are saved beside the teacher so later evaluations can exclude what it saw.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, replace
from pathlib import Path

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
import torchmetrics
from torch import nn
from torch.utils.data import DataLoader, Dataset

from distill.config import FitConfig
from distill.datasets.emotions import CANONICAL, canonical
from distill.errors import DistillError
from distill.faces import augment
from distill.faces.framing import IMAGENET, Preprocess
from distill.faces.store import FaceStore, require_store
from distill.progress import console
from distill.provenance import provenance
from distill.registry import STUDENTS
from distill.storage.files import write_json, write_text
from distill.students.model import Student
from distill.teachers.base import mirror_averaged
from distill.training.hardware import auto_precision
from distill.training.trainer import SharedStepModule, earlier_epochs_kept, fit_or_interrupt, make_trainer


def split_of(groups: list[str], test: float, val: float) -> np.ndarray:
    """'train' / 'val' / 'test' per face from a hash of its group (subject, else the face key)."""
    buckets = np.array([int(hashlib.sha1(f"split:{g}".encode()).hexdigest()[:8], 16) % 10_000 for g in groups])
    out = np.full(len(groups), "train", dtype=object)
    out[buckets < int((test + val) * 10_000)] = "val"
    out[buckets < int(test * 10_000)] = "test"
    return out


def group_of(meta: dict, key: str) -> str:
    return str(meta.get("subject") or meta.get("identity") or key)


class LabelledFaces(Dataset):
    def __init__(self, store: FaceStore, indices: np.ndarray, targets: np.ndarray, fresh_views: bool):
        self.store, self.indices, self.targets, self.fresh = store, indices, targets, fresh_views
        self.augment = augment.AugmentConfig()

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, j: int) -> dict:
        i = int(self.indices[j])
        params = augment.IDENTITY
        if self.fresh:
            params = augment.random_view(self.augment)
        return {
            "pixels": torch.from_numpy(self.store.pixels(i)),
            "params": torch.from_numpy(np.asarray(params, np.float32)),
            "target": int(self.targets[j]),
        }


def check_architecture(arch: str) -> None:
    """Refuse an architecture fit-teacher cannot build, before any photo is cropped for it."""
    if arch == "vgg_s" or arch in STUDENTS:
        return
    if arch.startswith("timm:"):
        import timm

        if not timm.is_model(arch[5:]):
            raise DistillError(f"unknown timm architecture '{arch[5:]}' (timm.list_models() names them)")
        return
    raise DistillError(f"unknown teacher architecture '{arch}'; valid: vgg_s, timm:NAME, {', '.join(STUDENTS.names())}")


def check_labels(labels: list[str | None], where: Path) -> None:
    """Refuse a set fit-teacher cannot learn from (no labels, or one class), before any photo is cropped."""
    named = {label for label in labels if label}
    if not named:
        raise DistillError(
            f"{where} has no labelled photos (a labels.csv, or one folder a class): fit-teacher learns labels"
        )
    if len(named) < 2:
        raise DistillError(f"{where}: every label is {named.pop()}; fit-teacher needs at least two classes")


def build_net(
    arch: str, classes: list[str], size: int, width: float, batch_norm: bool = False, framing: float = 1.0
) -> tuple[nn.Module, Preprocess, dict]:
    """(network, preprocessing, arch_kwargs saved in the checkpoint; for a student's network, the Student)."""
    n_classes = len(classes)
    pre = Preprocess(size=size, grey=False, crop=framing, **IMAGENET)
    if arch == "vgg_s":
        from distill.teachers.vgg_s import VGGS

        kwargs = {"width": width, "size": size, "batch_norm": batch_norm}
        return VGGS(n_classes, **kwargs), pre, kwargs
    if arch in STUDENTS:  # the papers' second row: a student's network trained on the labels themselves
        student = Student(arch, classes, size, crop=framing)
        return student.net, student.preprocess, {"student": student}
    if arch.startswith("timm:"):
        import timm

        try:
            return timm.create_model(arch[5:], pretrained=False, num_classes=n_classes), pre, {}
        except RuntimeError as err:
            raise DistillError(f"unknown timm architecture '{arch[5:]}'") from err
    raise DistillError(f"unknown teacher architecture '{arch}'; valid: vgg_s, timm:NAME, {', '.join(STUDENTS.names())}")


class SupervisedModule(SharedStepModule):
    """A network with its preprocessing, cross-entropy to ground truth, accuracy/UAR/macro-F1; one shared step."""

    def __init__(
        self,
        net: nn.Module,
        preprocess: Preprocess,
        n: int,
        cfg: FitConfig,
        class_weights: torch.Tensor,
        mirror: bool = False,
    ):
        """mirror: validation and test score each face averaged with its mirror image, as the saved teacher runs."""
        super().__init__()
        self.net, self.preprocess, self.cfg = net.to(memory_format=torch.channels_last), preprocess, cfg
        self.mirror = mirror
        self.lr, self.weight_decay, self.warmup = cfg.lr, cfg.weight_decay, 0.2
        self.register_buffer("class_weights", class_weights)
        self.metrics = nn.ModuleDict(
            {
                f"{stage}_{name}": metric
                for stage in ("train", "val", "test")
                for name, metric in (
                    ("accuracy", torchmetrics.classification.MulticlassAccuracy(n, average="micro")),
                    ("uar", torchmetrics.classification.MulticlassRecall(n, average="macro")),
                    ("macro_f1", torchmetrics.classification.MulticlassF1Score(n, average="macro")),
                )
            }
        )

    def shared_step(self, batch: dict, stage: str) -> torch.Tensor:
        # views made at the side whose framing gives the input side (label makes a teacher's views so too)
        x = augment.views_at(augment.to_float(batch["pixels"]), batch["params"], self.preprocess.source_side)
        x = self.preprocess(x).contiguous(memory_format=torch.channels_last)
        logits = mirror_averaged(self.net, x) if self.mirror and stage != "train" else self.net(x)
        loss = F.cross_entropy(
            logits, batch["target"], weight=self.class_weights, label_smoothing=self.cfg.label_smoothing
        )
        bs = len(x)
        self.log(f"{stage}/loss", loss, on_epoch=True, on_step=False, batch_size=bs, prog_bar=True)
        for name in ("accuracy", "uar", "macro_f1"):
            metric = self.metrics[f"{stage}_{name}"]
            metric(logits, batch["target"])
            self.log(f"{stage}/{name}", metric, on_epoch=True, on_step=False, batch_size=bs, prog_bar=name == "uar")
        return loss


def default_side() -> tuple[int, str]:
    """The input side an unset --size takes, and why: what this machine's time allows. 224 where a GPU trains (the
    papers' input); on a CPU 96 where it computes bf16 natively (conv3-5 then see 7x7, not 4x4: the better teacher),
    else 64, as a 96 px step in fp32 costs far more than a 64 px one (benchmarks/bench_fit_teacher.py)."""
    if torch.cuda.is_available():
        return 224, "a GPU"
    if auto_precision("cpu") == "bf16-mixed":
        return 96, "a CPU with native bf16"
    return 64, "a CPU without native bf16: --size 96 fits a better teacher, much more slowly"


def framing_of(store: FaceStore) -> float:
    """The share of each stored face the teacher learns from: the whole stored face (1.0, the store's own framing),
    or where each image was the face (the `whole` detector) the image itself, without the border crop added; a
    checkpoint records it, so the teacher later sees pool faces framed as it learnt."""
    if store.attrs.get("detector") != "whole":
        return 1.0
    margin = json.loads(store.attrs.get("crop_config", "{}")).get("margin", 0.25)
    return 1 / (1 + margin)


def _classes_and_targets(labels: list[str]) -> tuple[list[str], np.ndarray]:
    names = [canonical(lab) or lab for lab in labels]
    present = set(names)
    classes = [c for c in CANONICAL if c in present] + sorted(present - set(CANONICAL))
    return classes, np.array([classes.index(n) for n in names])


def _labelled_split(store: FaceStore, cfg: FitConfig) -> tuple[np.ndarray, list[str], np.ndarray, np.ndarray]:
    """(store rows with a label, class names, their targets, their 'train'/'val'/'test' split)."""
    idx = np.flatnonzero([bool(lab) for lab in store.labels])
    check_labels([store.labels[i] for i in idx], store.path)
    if len(idx) < 10:
        raise DistillError(f"{store.path} has {len(idx)} labelled faces; fit-teacher needs a labelled set")
    classes, targets = _classes_and_targets([store.labels[i] for i in idx])
    split = split_of([group_of(store.meta(i), store.keys[i]) for i in idx], cfg.test_fraction, cfg.val_fraction)
    for part in ("train", "val", "test"):
        if not (split == part).any():
            raise DistillError(f"{len(idx)} labelled faces are too few for a {part} split")
    return idx, classes, targets, split


def _class_weights(train_targets: np.ndarray, n: int, balanced: bool) -> torch.Tensor:
    """Inverse square root of class frequency, mean 1 over the classes; or all ones.

    Plain inverse frequency gives a class of a handful of photos dozens of times the weight of a common one: VGG-S
    from scratch then stayed near chance for many epochs; the square root keeps the ratio to a few times."""
    if not balanced:
        return torch.ones(n)
    counts = np.maximum(np.bincount(train_targets, minlength=n).astype(np.float32), 1)
    weights = counts**-0.5
    return torch.from_numpy(weights / weights.mean())


def fit_teacher(
    store_path: Path, out_dir: Path, cfg: FitConfig, show_progress: bool = True, resume: Path | None = None
) -> dict:
    """Train (or continue from the checkpoint `resume` of out_dir), keep the best (val UAR) weights, save
    teacher.pt + split + test scores; returns a summary."""
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    store = require_store(store_path)
    if cfg.size is None:  # resolved once and recorded in config.json, so a resumed fit keeps it on any machine
        side, why = default_side()
        cfg = replace(cfg, size=side)
        if show_progress:
            console.print(f"settings: size {side} ({why})", highlight=False)
    idx, classes, targets, split = _labelled_split(store, cfg)
    framing = framing_of(store)
    net, pre, arch_kwargs = build_net(cfg.arch, classes, cfg.size, cfg.width, cfg.batch_norm, framing)
    weights = _class_weights(targets[split == "train"], len(classes), cfg.balanced)
    mirror = cfg.mirror and "student" not in arch_kwargs  # a Student runs one pass: its scores are measured so
    module = SupervisedModule(net, pre, len(classes), cfg, weights, mirror)

    def loader(part: str, train: bool) -> DataLoader:
        sel = split == part
        return DataLoader(
            LabelledFaces(store, idx[sel], targets[sel], fresh_views=train),
            batch_size=cfg.batch_size,
            shuffle=train,
            num_workers=cfg.workers,
            persistent_workers=cfg.workers > 0,
        )

    keys = {part: [store.keys[i] for i in idx[split == part]] for part in ("train", "val", "test")}
    if resume is None:
        record = {"fit": asdict(cfg), "store": str(store_path), "classes": classes}
        write_json(out_dir / "config.json", record | {"provenance": provenance("fit-teacher")})
        write_json(out_dir / "split.json", keys)
        write_text(out_dir / "test-keys.txt", "\n".join(keys["test"]) + "\n")
    precision = auto_precision("auto") if cfg.precision == "auto" else cfg.precision
    trainer, ckpt = make_trainer(
        out_dir, cfg.epochs, "val/uar", show_progress, ema=cfg.ema, precision=precision, log_every_n_steps=5
    )
    with earlier_epochs_kept(out_dir / "logs" / "metrics.csv", resume is not None):
        loaders = {"train_dataloaders": loader("train", True), "val_dataloaders": loader("val", False)}
        fit_or_interrupt(trainer, module, resume, "fit-teacher", **loaders)
        # inside: the logger then writes the test scores before the earlier epochs are put back, not over them
        test = trainer.test(module, loader("test", False), ckpt_path=ckpt.best_model_path or None, verbose=False)[0]
    model_file = _save_model(out_dir, cfg.arch, module.net, classes, pre, arch_kwargs, mirror)
    from distill.evaluate.curves import plot_curves

    plot_curves(out_dir / "logs" / "metrics.csv", out_dir / "curves.png", ("loss", "uar"))
    summary = {
        model_file.stem: str(model_file),  # teacher (a teacher checkpoint) or student (a student's network)
        "spec": _spec_of(cfg.arch, model_file),
        "classes": classes,
        "faces": {part: len(v) for part, v in keys.items()},
        "test_keys": str(out_dir / "test-keys.txt"),
        "test": {k: float(v) for k, v in test.items()},
        "mirror": mirror,  # the test scores, and the teacher's later posteriors, average each face with its mirror
        "bytes_on_disk": model_file.stat().st_size,
    }
    write_json(out_dir / "summary.json", summary)
    return json.loads(json.dumps(summary))


def _save_model(
    out_dir: Path, arch: str, net: nn.Module, classes: list[str], pre: Preprocess, kwargs: dict, mirror: bool
) -> Path:
    """teacher.pt (vgg_s, timm: a teacher checkpoint), or student.pt for a student's network (eval, export and
    predict take it as they take a distilled student)."""
    from distill.teachers.vgg_s import save_checkpoint

    if "student" in kwargs:
        kwargs["student"].save(out_dir / "student.pt")
        return out_dir / "student.pt"
    save_checkpoint(out_dir / "teacher.pt", arch.split(":")[0], net, classes, pre, kwargs, mirror)
    return out_dir / "teacher.pt"


def _spec_of(arch: str, model_file: Path) -> str:
    """How later commands name the fitted model: a teacher spec, or the student file itself."""
    if arch == "vgg_s":
        return f"vgg_s:{model_file}"
    if arch.startswith("timm:"):
        return f"timm:{arch[5:]}?weights={model_file}"
    return str(model_file)


def resume_fit(checkpoint: Path, show_progress: bool = True) -> dict:
    """Continue an interrupted fit from one of its checkpoints, with the settings and store it was started with."""
    if not checkpoint.is_file():
        raise DistillError(f"checkpoint {checkpoint} not found")
    out_dir = checkpoint.parent.parent
    record = out_dir / "config.json"
    if not record.is_file():
        raise DistillError(f"{out_dir} is not a fit-teacher folder (no config.json)")
    saved = json.loads(record.read_text())
    return fit_teacher(Path(saved["store"]), out_dir, FitConfig.known(saved["fit"]), show_progress, checkpoint)
