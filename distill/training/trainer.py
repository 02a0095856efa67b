"""What the distillation and the supervised (fit-teacher) trainers share: one shared step for train/val/test,
AdamW (or SGD) with a one-cycle schedule, the Trainer with best/last checkpoints, CSV logs and epoch timing."""

from __future__ import annotations

import math
import time
from contextlib import contextmanager
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint, WeightAveraging
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.plugins.io import TorchCheckpointIO
from torch.optim.swa_utils import get_ema_multi_avg_fn

from distill.config import OPTIMIZERS
from distill.errors import DistillError, Interrupted
from distill.storage.files import atomic_path, disk_full, write_text
from distill.training.bars import progress_callbacks


class SharedStepModule(L.LightningModule):
    """Subclasses implement shared_step(batch, stage) and set lr, weight_decay, warmup (share of the steps)."""

    lr: float
    weight_decay: float
    warmup: float = 0.15
    optimizer: str = "adamw"

    def shared_step(self, batch: dict, stage: str) -> torch.Tensor:
        raise NotImplementedError

    def training_step(self, batch, _):
        return self.shared_step(batch, "train")

    def validation_step(self, batch, _):
        self.shared_step(batch, "val")

    def test_step(self, batch, _):
        self.shared_step(batch, "test")

    def trainable_parameters(self) -> list[torch.nn.Parameter]:
        return [p for p in self.parameters() if p.requires_grad]

    def configure_optimizers(self):
        opt = make_optimizer(self.optimizer, self.trainable_parameters(), self.lr, self.weight_decay)
        sched = torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=self.lr, total_steps=self.trainer.estimated_stepping_batches, pct_start=self.warmup
        )
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


def make_optimizer(name: str, params: list, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    """adamw (the default), or sgd with Nesterov momentum 0.9 (what MobileNets are usually trained with)."""
    if name not in OPTIMIZERS:  # TrainConfig refuses it earlier; here for library callers
        raise DistillError(f"unknown optimizer '{name}'; choose one of {', '.join(OPTIMIZERS)}")
    # fused: one kernel for all parameters instead of a loop of small ops per tensor (less optimizer time)
    fused = all(p.device.type in ("cpu", "cuda") for p in params) or None
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=0.9, nesterov=True, weight_decay=weight_decay, fused=fused)
    return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, fused=fused)


class EpochTimer(L.Callback):
    """Wall time per training epoch, logged beside the metrics (the papers' Table 2 reports it). An epoch resumed
    from a mid-epoch checkpoint has no start here, and is not timed."""

    _start: float | None = None

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._start = time.perf_counter()

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if self._start is None:
            return
        seconds, self._start = time.perf_counter() - self._start, None
        pl_module.log("train/epoch_seconds", seconds, on_epoch=True, on_step=False, sync_dist=True)


class StopOnNonFinite(L.Callback):
    """A loss that is not a finite number ends the training with one line: no later checkpoint, no "best" score
    and no student is made of it (a diverged run, or a cache of non-finite posteriors)."""

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        if loss is not None and not torch.isfinite(loss).all():
            raise DistillError(
                f"the training loss is not a finite number at step {trainer.global_step} (epoch "
                f"{trainer.current_epoch + 1}): lower --lr, or check the cache (`distill info CACHE`)"
            )


class SaveOnInterrupt(L.Callback):
    """On Ctrl-C or `kill` (SIGTERM: Lightning stops after the current batch), write last.ckpt where it stands, so
    `--resume` continues from there, not from the last epoch."""

    def __init__(self, checkpoints: Path):
        self.path = checkpoints / "last.ckpt"
        self.interrupted = False

    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        from lightning.pytorch.utilities.exceptions import SIGTERMException

        if isinstance(exception, KeyboardInterrupt | SIGTERMException) and not trainer.sanity_checking:
            self.interrupted = True
            trainer.save_checkpoint(self.path, weights_only=False)  # all a resume needs (optimizer, loops)


class AtomicCheckpointIO(TorchCheckpointIO):
    """Checkpoints written whole or not at all: a temporary file beside the final one, renamed over it. Lightning's
    own writes a temporary file in /tmp and moves it, which on a full disk left a truncated best.ckpt under its
    final name and an error that named /tmp."""

    def save_checkpoint(self, checkpoint: dict, path, storage_options=None) -> None:
        with atomic_path(path) as tmp:  # a DistillError naming the folder that could not take it
            try:
                torch.save(checkpoint, tmp)
            except (OSError, RuntimeError) as err:  # torch reports a short write as a RuntimeError
                folder = Path(path).parent
                if disk_full(err, folder):
                    raise DistillError(f"cannot write {path}: the disk holding {folder.resolve()} is full") from err
                raise DistillError(f"cannot write {path} in {folder}: {err}".splitlines()[0]) from err


FROZEN = "teacher."  # the LightningModule's frozen teacher: never in a checkpoint (module.on_save_checkpoint)


@contextmanager
def without_teacher(pl_module: L.LightningModule):
    """The module with its frozen teacher detached for the duration: what the weight average copies and walks."""
    name = FROZEN.rstrip(".")
    teacher = pl_module._modules.get(name)
    if teacher is not None:
        setattr(pl_module, name, None)
    try:
        yield pl_module
    finally:
        if teacher is not None:
            setattr(pl_module, name, teacher)


class MultiTensorEMA(WeightAveraging):
    """Lightning's EMAWeightAveraging (every step, buffers too) with torch's multi-tensor update: one foreach lerp
    over all weights instead of a Python loop over each tensor (a measurable share of a SqueezeNet step on a CPU).

    The frozen teacher is left out of the average: Lightning would copy it (VGG-S: +377 MiB) and lerp its
    unchanging weights every step. Each hook that copies or walks the module's weights sees it without the teacher,
    so the average and the module list the same tensors in the same order."""

    def __init__(self, decay: float):
        super().__init__(use_buffers=True, multi_avg_fn=get_ema_multi_avg_fn(decay))

    def should_update(self, step_idx: int | None = None, epoch_idx: int | None = None) -> bool:
        return step_idx is not None

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        with without_teacher(pl_module):
            super().setup(trainer, pl_module, stage)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        with without_teacher(pl_module):
            super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)

    def _swap_models(self, pl_module: L.LightningModule) -> None:
        with without_teacher(pl_module):
            super()._swap_models(pl_module)

    def _copy_average_to_current(self, pl_module: L.LightningModule) -> None:
        with without_teacher(pl_module):
            super()._copy_average_to_current(pl_module)

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict) -> None:
        """As Lightning's, without the frozen teacher in the current model's copy (the module's own hook drops it
        from the averaged state_dict; the teacher is rebuilt from its spec)."""
        super().on_save_checkpoint(trainer, pl_module, checkpoint)
        current = checkpoint.get("current_model_state", {})
        for key in [k for k in current if k.startswith(FROZEN)]:
            del current[key]

    def on_load_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict) -> None:
        """Lightning's, with the teacher detached: neither saved state holds it, and both load strictly."""
        with without_teacher(pl_module):
            super().on_load_checkpoint(trainer, pl_module, checkpoint)


def weight_average(decay: float) -> list[L.Callback]:
    """Lightning's EMA of the weights (and BN statistics), updated every step, or nothing for decay 0.

    With it, validation, the checkpoints and so the exported student all hold the averaged weights."""
    if decay == 0:
        return []
    if not 0 < decay < 1:
        raise DistillError(f"--ema {decay}: the decay per step must lie in (0, 1), e.g. 0.998; 0 turns it off")
    return [MultiTensorEMA(decay)]


# Why: a plateau while the one-cycle learning rate is still high (mini_xception's 60-epoch student: level from
# epoch 19, stopped after 31 at 0.6 of the peak rate) is not the end; the best weights come as it anneals
# (the ensemble's 60-epoch students: best after 39 and 46). Early stopping waits for the schedule's last quarter.
STOP_NOT_BEFORE = 0.75


def make_trainer(
    out_dir: Path,
    epochs: int,
    monitor: str,
    show_progress: bool,
    ema: float = 0.0,
    patience: int = 0,
    **trainer_kwargs,
) -> tuple[L.Trainer, ModelCheckpoint]:
    """A Trainer writing best/last checkpoints (best by `monitor`, higher is better) and CSV logs to out_dir;
    `ema` > 0 averages the weights (see weight_average); `patience` > 0 stops after that many epochs without a
    better `monitor` (the best checkpoint is what the run keeps), but not in the schedule's first STOP_NOT_BEFORE."""
    shown, bar = progress_callbacks(show_progress)
    ckpt = ModelCheckpoint(
        dirpath=out_dir / "checkpoints",
        filename="best",
        monitor=monitor,
        mode="max",
        save_last=True,
        enable_version_counter=False,  # a resumed run writes last.ckpt again, not last-v1.ckpt beside it
    )
    trainer = L.Trainer(
        max_epochs=epochs,
        min_epochs=math.ceil(STOP_NOT_BEFORE * epochs) if patience else None,
        callbacks=[
            StopOnNonFinite(),
            ckpt,
            EpochTimer(),
            *weight_average(ema),
            SaveOnInterrupt(out_dir / "checkpoints"),
        ]
        + ([EarlyStopping(monitor, mode="max", patience=patience)] if patience else [])
        + shown,
        logger=CSVLogger(out_dir, name="logs", version=""),
        plugins=[AtomicCheckpointIO()],
        enable_progress_bar=bar,
        enable_model_summary=False,
        **trainer_kwargs,
    )
    return trainer, ckpt


def fit_or_interrupt(trainer: L.Trainer, module: L.LightningModule, resume: Path | None, command: str, **data) -> None:
    """trainer.fit on `data` (datamodule=, or train_dataloaders= and val_dataloaders=); on Ctrl-C (Lightning saves
    last.ckpt through SaveOnInterrupt, then exits) an Interrupted error that says how to resume with `command`."""
    try:
        trainer.fit(module, **data, ckpt_path=resume, weights_only=True)  # tensors and numbers only
    except SystemExit:
        saver = next((c for c in trainer.callbacks if isinstance(c, SaveOnInterrupt)), None)
        if saver is None or not saver.interrupted:
            raise
        raise Interrupted(f"interrupted — continue with: distill {command} --resume {saver.path.resolve()}") from None


@contextmanager
def earlier_epochs_kept(metrics_csv: Path, resuming: bool):
    """Around a resumed fit: the epochs logged before it stay in metrics.csv, even when it fails or is interrupted."""
    earlier = set_aside_earlier_epochs(metrics_csv) if resuming else None
    try:
        yield
    finally:
        if earlier is not None and earlier.is_file():
            prepend_epochs(metrics_csv, earlier)


def set_aside_earlier_epochs(metrics_csv: Path) -> Path:
    """Lightning's CSV logger deletes metrics.csv when a run resumes; the epochs before the restart wait on disk
    beside it (so that even a SIGKILL of the resumed run keeps them) and are put back when it ends."""
    aside = metrics_csv.with_name("metrics-before-resume.csv")
    if metrics_csv.is_file():
        if aside.is_file():  # an earlier resume was killed before it could put them back
            prepend_epochs(metrics_csv, aside)
        metrics_csv.replace(aside)
    return aside


def prepend_epochs(metrics_csv: Path, earlier: Path) -> None:
    """metrics.csv := the rows of `earlier` from the epochs before metrics.csv's first, then metrics.csv's;
    `earlier` is removed."""
    import csv
    import io

    old = list(csv.DictReader(io.StringIO(earlier.read_text())))
    new = list(csv.DictReader(io.StringIO(metrics_csv.read_text()))) if metrics_csv.is_file() else []
    first_new = min((int(r["epoch"]) for r in new if r.get("epoch")), default=None)
    rows = [r for r in old if first_new is None or int(r["epoch"]) < first_new] + new
    columns = list(dict.fromkeys(c for r in (old[:1] + new[:1]) for c in r))
    out = io.StringIO()
    writer = csv.DictWriter(out, columns, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    write_text(metrics_csv, out.getvalue())
    earlier.unlink()
