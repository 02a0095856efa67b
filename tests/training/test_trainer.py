"""The weight average leaves the frozen teacher out: no copy of it, and the student's tensors line up; early
stopping waits for the schedule's last quarter."""

import lightning as L
import torch
from torch import nn

from distill.training.trainer import STOP_NOT_BEFORE, MultiTensorEMA, make_trainer


class WithTeacher(L.LightningModule):
    def __init__(self):
        super().__init__()
        self.student = nn.Linear(3, 2)
        self.teacher = nn.Linear(3, 1000)  # big next to the student; registered after it, as the module does
        self.head = nn.Linear(2, 2)  # a trainable part after the teacher (as a hint regressor is)
        self.teacher.requires_grad_(False)


def test_the_average_holds_no_teacher_and_swaps_the_student_only():
    module, ema = WithTeacher(), MultiTensorEMA(0.5)
    ema.setup(None, module, "fit")
    averaged = ema._average_model.module
    assert averaged.teacher is None and module.teacher is not None  # put back after the copy
    assert sum(p.numel() for p in averaged.parameters()) == 8 + 6  # student and head only
    teacher_before = module.teacher.weight.clone()
    with torch.no_grad():
        module.student.weight.add_(1.0)
        module.head.bias.fill_(3.0)
    ema._swap_models(module)  # what validation does: the average's weights into the module
    assert not torch.equal(module.head.bias, torch.full((2,), 3.0))  # the average's bias, not the current one
    assert torch.equal(averaged.head.bias, torch.full((2,), 3.0))
    assert torch.equal(module.teacher.weight, teacher_before)  # the teacher untouched


class Flat(L.LightningModule):
    """A model whose validation agreement never improves: early stopping would end it after `patience` epochs."""

    def __init__(self):
        super().__init__()
        self.layer = nn.Linear(1, 1)

    def training_step(self, batch, _):
        return self.layer(batch[0]).pow(2).mean()

    def validation_step(self, batch, _):
        self.log("val/agreement", 0.5)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_early_stopping_waits_for_the_last_quarter_of_the_schedule(tmp_path):
    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.ones(2, 1)), batch_size=2)
    trainer, _ = make_trainer(tmp_path, 12, "val/agreement", False, patience=1, accelerator="cpu")
    trainer.fit(Flat(), data, data)
    assert trainer.current_epoch == 9 == 12 * STOP_NOT_BEFORE  # not 2: a flat stretch before it is not the end
    trainer, _ = make_trainer(tmp_path / "never", 4, "val/agreement", False, accelerator="cpu")
    trainer.fit(Flat(), data, data)
    assert trainer.current_epoch == 4  # patience 0: every epoch runs


def test_a_checkpoint_is_written_whole_or_not_at_all(tmp_path, monkeypatch):
    import errno
    import re
    import shutil

    import pytest
    import torch

    from distill.errors import DistillError
    from distill.storage import files
    from distill.training import trainer

    io, path = trainer.AtomicCheckpointIO(), tmp_path / "checkpoints" / "best.ckpt"
    io.save_checkpoint({"step": 1}, path)
    assert torch.load(path, weights_only=True) == {"step": 1}

    def full_disk(obj, f):
        open(f, "wb").write(b"half a checkpoint")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(trainer.torch, "save", full_disk)
    full = rf"cannot write .*best.ckpt: the disk holding {re.escape(str(path.parent.resolve()))} is full$"
    with pytest.raises(DistillError, match=full):
        io.save_checkpoint({"step": 2}, path)
    assert torch.load(path, weights_only=True) == {"step": 1}  # the last whole one stays, under its name
    assert [p.name for p in path.parent.iterdir()] == ["best.ckpt"]  # no temporary file left behind

    def short_write(obj, f):  # what torch's zip writer raises on a full disk
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 64 vs 0")

    monkeypatch.setattr(trainer.torch, "save", short_write)
    with pytest.raises(DistillError, match=r"in .*: \[enforce fail"):  # with space left: torch's words
        io.save_checkpoint({"step": 3}, path)
    monkeypatch.setattr(files.shutil, "disk_usage", lambda folder: shutil._ntuple_diskusage(10**9, 10**9, 4096))
    with pytest.raises(DistillError, match=full):  # with next to nothing left: a full disk, said so
        io.save_checkpoint({"step": 3}, path)
