"""The weight average leaves the frozen teacher out: no copy of it, and the student's tensors line up."""

import lightning as L
import torch
from torch import nn

from distill.training.common import MultiTensorEMA


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
