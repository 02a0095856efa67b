"""What a training shows while it runs: Lightning's rich bar on a terminal (epochs counted from 1), one plain line
every few seconds in a log, and once, after the first steps, how long the rest will take."""

from __future__ import annotations

import time

import lightning as L
from lightning.pytorch.callbacks import RichProgressBar

from distill.progress import LINE_EVERY, clock, console


def steps_left(trainer: L.Trainer, batch_idx: int) -> int:
    """Optimizer steps still to run after this batch, from the loop's own counters (max_epochs and max_steps)."""
    per_epoch = int(trainer.num_training_batches)
    left = (int(trainer.max_epochs or 1) - trainer.current_epoch - 1) * per_epoch + per_epoch - batch_idx - 1
    if trainer.max_steps and trainer.max_steps > 0:
        left = min(left, trainer.max_steps - trainer.global_step)
    return max(left, 0)


class EpochBar(RichProgressBar):
    """Lightning's rich bar, but 'Epoch 3/3' on the last of three epochs (Lightning counts from 0: 'Epoch 2/2')."""

    def _get_train_description(self, current_epoch: int) -> str:
        text = f"Epoch {current_epoch + 1}" + (f"/{self.trainer.max_epochs}" if self.trainer.max_epochs else "")
        return f"{text:{len(self.validation_description)}}"  # padded: the validation bar's label is as long


class TrainingLines(L.Callback):
    """In a log: 'train: epoch E/N, step S/T (P%), 0:41, about 1:35 left' every LINE_EVERY seconds, and each
    epoch's validation figures."""

    def __init__(self, every: float = LINE_EVERY):
        self.every, self._start, self._last = every, 0.0, 0.0

    def on_train_start(self, trainer, pl_module) -> None:
        self._start = self._last = time.monotonic()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        now = time.monotonic()
        if now - self._last < self.every or not trainer.is_global_zero:
            return
        self._last, per_epoch = now, int(trainer.num_training_batches)
        done, left = batch_idx + 1, steps_left(trainer, batch_idx)
        elapsed = now - self._start
        pace = elapsed / max(trainer.global_step, 1)
        _say(
            f"train: epoch {trainer.current_epoch + 1}/{trainer.max_epochs}, step {done:,}/{per_epoch:,} "
            f"({done / max(per_epoch, 1):.0%}), {clock(elapsed)}, about {clock(pace * left)} left"
        )

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        if trainer.sanity_checking or not trainer.is_global_zero:
            return
        figures = ", ".join(f"{k} {float(v):.4g}" for k, v in trainer.callback_metrics.items() if k.startswith("val/"))
        _say(f"train: epoch {trainer.current_epoch + 1}/{trainer.max_epochs} validated: {figures}")


class Estimate(L.Callback):
    """After the first steps, how long the whole run will take at this pace (said once, on rank 0)."""

    after = 20  # steps: past the first batches' warm-up
    _start: float | None = None
    _first: int = 0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        step = trainer.global_step
        if self._start is None:  # the run's first step here (a resumed run starts past 0)
            self._start, self._first = time.perf_counter(), step
        elif step == self._first + self.after and trainer.is_global_zero:
            per_step = (time.perf_counter() - self._start) / self.after
            left = steps_left(trainer, batch_idx)
            _say(f"about {clock(per_step * left)} for the {left:,} steps left ({per_step * 1000:.0f} ms a step)")


def _say(text: str) -> None:
    console.print(text, highlight=False, markup=False, soft_wrap=True)


def progress_callbacks(show_progress: bool) -> tuple[list[L.Callback], bool]:
    """(callbacks, enable_progress_bar) for a Trainer: the bar on a terminal, plain lines elsewhere, or nothing."""
    if not show_progress:
        return [], False
    if console.is_terminal:
        return [EpochBar(), Estimate()], True
    return [TrainingLines(), Estimate()], False
