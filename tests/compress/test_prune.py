"""Magnitude and channel pruning."""

import pytest
import torch

from distill.compress.pipeline import wrap_chain
from distill.errors import DistillError
from distill.specs import CompressPlan
from distill.students.model import Student


def test_prune_zeroes_the_smallest_weights_on_a_cubic_schedule():
    from distill.compress.prune import MagnitudePruning

    prune = MagnitudePruning(0.75)
    w = torch.arange(1.0, 9.0).view(2, 4) * torch.tensor([1.0, -1.0, 1.0, -1.0])
    prune.advance(None, 3, 3)
    assert torch.equal(prune.effective(w), w * (w.abs() > 6))  # 6 of 8 smallest |w| gone
    prune.advance(None, 1, 3)
    assert prune.now == pytest.approx(0.75 * (1 - (2 / 3) ** 3))
    blob = prune.encode(MagnitudePruning(0.75).effective(torch.randn(64, 32)))
    assert blob["sparse_values"].numel() == 64 * 32 // 4 and blob["mask"].numel() == 64 * 32 // 8


def test_channel_pruning_removes_channels_and_must_come_first():
    student = Student("squeezenet1_1_bn", ["a", "b"], size=32)
    widths = [m.out_channels for m in student.net.modules() if isinstance(m, torch.nn.Conv2d)]
    wrap_chain(student.net, CompressPlan.parse("prune-ch:0.5"))
    pruned = [m.out_channels for m in student.net.modules() if isinstance(m, torch.nn.Conv2d)]
    assert pruned[-1] == widths[-1] == 2  # the classifier keeps its classes
    assert all(p <= w - w // 2 + 1 for p, w in zip(pruned[:-1], widths[:-1], strict=True))
    assert student(torch.rand(2, 3, 32, 32)).shape == (2, 2)
    with pytest.raises(DistillError, match="must come first"):
        wrap_chain(Student("squeezenet1_1_bn", ["a", "b"], size=32).net, CompressPlan.parse("quant+prune-ch"))


def test_global_channel_pruning_takes_the_weakest_channels_anywhere():
    from distill.compress.prune import ChannelPruning

    student = Student("squeezenet1_1_bn", ["a", "b"], size=32)
    convs = [m for m in student.net.modules() if isinstance(m, torch.nn.Conv2d)]
    widths = [m.out_channels for m in convs]
    with torch.no_grad():
        convs[3].weight[: widths[3] * 3 // 4].mul_(1e-3)  # three quarters of one layer's channels barely matter
    pruning = ChannelPruning(0.3)
    pruning.size, pruning.scope = 32, "global"
    params = sum(p.numel() for p in student.net.parameters())
    pruning.advance(student.net, 1, 1)
    pruned = [m.out_channels for m in convs]
    assert pruned[3] <= widths[3] // 4 + 1  # all its weak channels went: a per-layer ratio takes 30% of each
    assert all(p >= w * ChannelPruning.MIN_KEPT for p, w in zip(pruned, widths, strict=True))
    assert all(p % ChannelPruning.ROUND_TO == 0 for p in pruned[:-1])  # int8 kernels: whole blocks
    assert sum(p.numel() for p in student.net.parameters()) < params
    assert student(torch.rand(2, 3, 32, 32)).shape == (2, 2)
