"""`distill train`: Trainer setup, run folder (resolved config, checkpoints, logs, curves), student export."""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from pathlib import Path

import lightning as L
import torch

from distill.config import TrainConfig
from distill.distributed import announce_run_dir, is_global_zero, per_process_batch
from distill.errors import DistillError
from distill.provenance import provenance
from distill.storage.files import write_json
from distill.storage.torch_files import read_torch_file
from distill.students.model import Student
from distill.training.data import DistillData
from distill.training.distill_module import DistillModule
from distill.training.trainer import earlier_epochs_kept, fit_or_interrupt, make_trainer


def _live_teacher(cfg: TrainConfig, data: DistillData) -> torch.nn.Module | None:
    """The teacher itself, for hints or online teaching; it must be the one that wrote the cache."""
    if "teacher" not in cfg.loss_spec.needs() and not cfg.online_teacher:
        return None
    from distill.teachers.build import build_teacher

    made = json.loads(data.pairs[0][1].attrs["config"])  # the LabelConfig that wrote the cache
    teacher = build_teacher(made["teacher"], made.get("combine", "prob"), made.get("class_map"))
    if json.loads(json.dumps(teacher.describe())) != data.teacher:
        raise DistillError(
            f"teacher {made['teacher']} is not what it was when the cache was made (other weights, classes "
            "or preprocessing); re-run `distill label`"
        )
    return teacher


def _views(cfg: TrainConfig) -> str:
    if cfg.online_teacher:
        return "fresh"
    return "cached" if cfg.use_views else "identity"


def make_data(sources: list[tuple[Path, Path]], cfg: TrainConfig) -> DistillData:
    """The data of a resolved cfg: views made at the step's side, faces in memory or read per batch."""
    from distill.labelling.cache import PosteriorCache
    from distill.training.defaults import working_side

    side = working_side(cfg, PosteriorCache(sources[0][1]).teacher)
    return DistillData(
        sources,
        cfg.batch_size,
        cfg.val_fraction,
        cfg.workers,
        _views(cfg),
        cfg.limit,
        cfg.balance,
        side=side,
        in_memory=cfg.in_memory,
    )


def build_module(
    cfg: TrainConfig, data: DistillData, student: Student, teacher: torch.nn.Module | None = None, say: bool = False
) -> DistillModule:
    """The LightningModule for `cfg` over `data` (the teacher itself only when the loss or online teaching needs
    it; `teacher` replaces the cache's own), the teacher moved to ONNX Runtime where cfg.teacher_runtime says."""
    teacher = teacher if teacher is not None else _live_teacher(cfg, data)
    if teacher is not None and _teacher_in_onnx(cfg):
        from distill.teachers.runtime import in_onnx_runtime

        note = in_onnx_runtime(teacher, torch.get_num_threads())
        if say and is_global_zero():
            from distill.progress import console

            console.print(f"settings: {note}", highlight=False)
    return DistillModule(student, cfg, teacher, data.side)


def _teacher_in_onnx(cfg: TrainConfig) -> bool:
    """--teacher-runtime onnx, for a teacher that only labels each step's views (hints need its PyTorch layers)."""
    needs = cfg.loss_spec.needs()
    return cfg.teacher_runtime == "onnx" and cfg.online_teacher and "teacher" not in needs


def train(
    sources: list[tuple[Path, Path]],
    run_dir: Path,
    cfg: TrainConfig,
    resume: Path | None = None,
    show_progress: bool = True,
) -> dict:
    """Train a new `cfg.student` from (store, cache) pairs and save it as run_dir/student.pt; returns a summary with
    its path and the final metrics."""
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    cfg = _resolved(cfg, sources, show_progress)
    data = _checked_data(sources, cfg)
    student = Student(cfg.student, data.classes, cfg.size, cfg.grey, cfg.small_input, cfg.width, cfg.framing)
    summary = _fit(sources, run_dir, cfg, data, student, None, resume, show_progress)
    if "rank" not in summary:  # the process that keeps the result
        student.save(run_dir / "student.pt")
        summary["student"] = str((run_dir / "student.pt").resolve())
        write_json(run_dir / "summary.json", summary)
    return summary


def fine_tune(
    student: Student,
    sources: list[tuple[Path, Path]],
    run_dir: Path,
    cfg: TrainConfig,
    teacher: torch.nn.Module | None = None,
    show_progress: bool = True,
) -> dict:
    """Train `student` further (e.g. with compressed layers) and leave it with its best weights, unsaved: its owner
    saves it. `teacher`: a frozen network of the cache's classes that labels each training view in place of the
    cache (it needs cfg.online_teacher; validation still measures agreement with the cache's teacher)."""
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    cfg = replace(_resolved(cfg, sources, False), start_size=None)  # a short fine-tune: the full side throughout
    data = _checked_data(sources, cfg)
    if student.classes != data.classes:
        raise DistillError(f"the student's classes {student.classes} are not the cache's {data.classes}")
    if teacher is not None and not cfg.online_teacher:
        raise DistillError("a live teacher labels fresh views: it needs online_teacher")
    summary = _fit(sources, run_dir, cfg, data, student, teacher, None, show_progress)
    if "rank" not in summary:
        write_json(run_dir / "summary.json", summary | {"student": None})
    return summary


def _checked_data(sources: list[tuple[Path, Path]], cfg: TrainConfig) -> DistillData:
    data = make_data(sources, cfg)
    if "labels" in cfg.loss_spec.needs() and data.labelled_training_faces() == 0:
        raise DistillError(
            f"--loss {cfg.loss}: no training face has a label of the teacher's classes {data.classes}; 'ce' needs a "
            "labelled face store (`distill crop` of a labelled folder, e.g. a labels.csv or RaFD layout)"
        )
    return data


def _fit(
    sources: list[tuple[Path, Path]],
    run_dir: Path,
    cfg: TrainConfig,
    data: DistillData,
    student: Student,
    teacher: torch.nn.Module | None,
    resume: Path | None,
    show_progress: bool,
) -> dict:
    """What training and fine-tuning share: the config record, the Trainer, the fit (resumable, interruptible),
    the best weights put back into `student`, the curves; returns the summary (a non-zero rank: its rank only)."""
    module = build_module(cfg, data, student, teacher, say=show_progress)
    if is_global_zero():  # ranks Lightning starts later re-run this function with the same config
        write_json(
            run_dir / "config.json",
            {
                "train": asdict(cfg),
                "sources": [
                    {"store": str(Path(store).resolve()), "cache": str(Path(cache).resolve())}
                    for store, cache in sources
                ],
                "teacher": data.teacher,
                "provenance": provenance("train"),
            },
        )
    trainer, ckpt = make_trainer(
        run_dir,
        cfg.epochs,
        "val/agreement",
        show_progress,
        cfg.ema,
        cfg.patience,
        log_every_n_steps=10,
        max_steps=cfg.max_steps,
        precision=cfg.precision,
        **cfg.dist().lightning_kwargs(),
    )
    data.batch_size = per_process_batch(cfg.batch_size, trainer.world_size)
    with earlier_epochs_kept(run_dir / "logs" / "metrics.csv", bool(resume) and trainer.is_global_zero):
        with announce_run_dir(run_dir):
            fit_or_interrupt(trainer, module, resume, "train", datamodule=data)
    if not trainer.is_global_zero:
        return {"run": str(run_dir), "rank": trainer.global_rank}
    best = ckpt.best_model_path or ckpt.last_model_path
    if best:
        state = torch.load(best, map_location="cpu", weights_only=True)["state_dict"]
        student.net.load_state_dict(
            {k[len("student.net.") :]: v for k, v in state.items() if k.startswith("student.net.")}
        )
    from distill.evaluate.curves import plot_curves

    plot_curves(run_dir / "logs" / "metrics.csv", run_dir / "curves.png")
    return {
        "run": str(run_dir.resolve()),
        "best_checkpoint": str(Path(best).resolve()) if best else None,
        "best_val_agreement": float(ckpt.best_model_score) if ckpt.best_model_score is not None else None,
        "final_metrics": {k: float(v) for k, v in trainer.callback_metrics.items()},
    }


def _resolved(cfg: TrainConfig, sources: list[tuple[Path, Path]], say: bool) -> TrainConfig:
    """cfg with its unset settings filled in (training/defaults.py); `say` prints where each came from."""
    from distill.labelling.cache import PosteriorCache
    from distill.training.defaults import resolve

    cfg, notes = resolve(cfg, [PosteriorCache(cache) for _, cache in sources])
    if say and notes and is_global_zero():
        from distill.progress import console

        console.print("settings: " + "; ".join(notes), highlight=False)
    return cfg


def load_run_config(run_dir: Path) -> dict:
    path = run_dir / "config.json"
    if not path.is_file():
        raise DistillError(f"{run_dir} is not a training run (no config.json)")
    return json.loads(path.read_text())


def run_train_config(saved: dict) -> TrainConfig:
    """The TrainConfig a run saved (keys of older versions that no longer exist are ignored; a run saved before
    progressive resizing existed goes on at its own side)."""
    train = saved["train"]
    return TrainConfig.known(train if "start_size" in train else train | {"start_size": train.get("size")})


def run_name(cfg: TrainConfig) -> str:
    """A run folder's name after its stamp: 'squeezenet1_1_bn-kld'."""
    return f"{cfg.student}-{cfg.loss.replace('+', '_')}"


def resume_run(checkpoint: Path, show_progress: bool = True) -> dict:
    """Continue an interrupted run from one of its checkpoints with the config and caches it was started with."""
    if not checkpoint.is_file():
        raise DistillError(f"checkpoint {checkpoint} not found")
    run_dir = checkpoint.resolve().parent.parent
    if checkpoint.resolve().parent.name != "checkpoints" or not (run_dir / "config.json").is_file():
        raise DistillError(
            f"--resume {checkpoint}: not a checkpoint of a training run (RUN/checkpoints/last.ckpt or best.ckpt)"
        )
    if not {"state_dict", "loops", "epoch"} <= set(read_torch_file(checkpoint)):  # truncated, foreign: said here
        raise DistillError(f"--resume {checkpoint}: not a Lightning training checkpoint (no state, loops or epoch)")
    saved = load_run_config(run_dir)
    cfg = run_train_config(saved)
    sources = [(Path(s["store"]), Path(s["cache"])) for s in saved["sources"]]
    return train(sources, run_dir, cfg, resume=checkpoint, show_progress=show_progress)
