"""Wall time per training epoch, logged beside the metrics (the papers' Table 2 reports it)."""

from __future__ import annotations

import time

import lightning as L


class EpochTimer(L.Callback):
    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._start = time.perf_counter()

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        pl_module.log("train/epoch_seconds", time.perf_counter() - self._start, on_epoch=True, on_step=False)
