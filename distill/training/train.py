"""`distill train`: Trainer setup, run folder (resolved config, checkpoints, logs, curves), student export."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger

from distill.errors import DistillError
from distill.fileio import write_json
from distill.students.model import Student
from distill.training.data import DistillData
from distill.training.module import DistillModule
from distill.workspace import provenance


@dataclass
class TrainConfig:
    student: str = "squeezenet1_1"
    loss: str = "kld"  # e.g. kld, label, hint, kld+hint, kld:0.9+label:0.1
    temperature: float = 4.0
    epochs: int = 10
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 5e-4
    size: int = 64  # student input side, px
    grey: bool = False
    small_input: bool = False  # stride-1 stem for small faces
    width: float = 1.0
    val_fraction: float = 0.1
    use_views: bool = True  # train on cached augmented views when the cache has them
    hint_layer: str | None = None
    hint_epochs: int = 0  # FitNets stage 1 length (hint only), then the other terms
    seed: int = 0
    workers: int = 2
    limit: int | None = None  # cap on training faces (smoke runs)
    devices: str = "auto"
    accelerator: str = "auto"


def _teacher_for_hints(cfg: TrainConfig, cache) -> torch.nn.Module | None:
    if "hint" not in cfg.loss:
        return None
    from distill.teachers.spec import build_teacher

    return build_teacher(cache.teacher["spec"], cache.teacher.get("combine", "prob"))


def train(
    store: Path, cache: Path, run_dir: Path, cfg: TrainConfig, resume: Path | None = None, show_progress: bool = True
) -> dict:
    """Train a student from the cache; returns a summary with the exported student path and final metrics."""
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    data = DistillData(store, cache, cfg.batch_size, cfg.val_fraction, cfg.workers, cfg.use_views, cfg.limit)
    student = Student(cfg.student, data.classes, cfg.size, cfg.grey, cfg.small_input, cfg.width)
    module = DistillModule(
        student,
        cfg.loss,
        cfg.temperature,
        cfg.lr,
        cfg.weight_decay,
        cfg.epochs,
        _teacher_for_hints(cfg, data.cache),
        cfg.hint_layer,
        cfg.hint_epochs,
    )
    write_json(
        run_dir / "config.json",
        {
            "train": asdict(cfg),
            "store": str(store),
            "cache": str(cache),
            "teacher": data.cache.teacher,
            "provenance": provenance("train"),
        },
    )
    ckpt = ModelCheckpoint(
        dirpath=run_dir / "checkpoints", filename="best", monitor="val/agreement", mode="max", save_last=True
    )
    trainer = L.Trainer(
        max_epochs=cfg.epochs,
        accelerator=cfg.accelerator,
        devices=cfg.devices,
        callbacks=[ckpt],
        logger=CSVLogger(run_dir, name="logs", version=""),
        enable_progress_bar=show_progress,
        enable_model_summary=False,
        log_every_n_steps=10,
        deterministic=False,
    )
    trainer.fit(module, datamodule=data, ckpt_path=resume)
    best = ckpt.best_model_path or ckpt.last_model_path
    if best:
        state = torch.load(best, map_location="cpu", weights_only=True)["state_dict"]
        student.net.load_state_dict(
            {k[len("student.net.") :]: v for k, v in state.items() if k.startswith("student.net.")}
        )
    student.save(run_dir / "student.pt")
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    from distill.evaluate.curves import plot_curves

    plot_curves(run_dir / "logs" / "metrics.csv", run_dir / "curves.png")
    summary = {
        "run": str(run_dir),
        "student": str(run_dir / "student.pt"),
        "best_checkpoint": best,
        "best_val_agreement": float(ckpt.best_model_score) if ckpt.best_model_score is not None else None,
        "final_metrics": metrics,
    }
    write_json(run_dir / "summary.json", summary)
    return summary


def load_run_config(run_dir: Path) -> dict:
    path = run_dir / "config.json"
    if not path.is_file():
        raise DistillError(f"{run_dir} is not a training run (no config.json)")
    return json.loads(path.read_text())
