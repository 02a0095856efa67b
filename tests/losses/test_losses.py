"""Loss functions against hand values and their combination."""

import math

import pytest
import torch

from distill.errors import DistillError
from distill.losses import functional as LF
from distill.losses.modules import CombinedLoss
from distill.specs import LossSpec


def test_kld_is_zero_for_equal_logits_and_matches_hand_value():
    z = torch.randn(5, 7)
    assert LF.kld_loss(z, z.clone(), 4.0).abs() < 1e-6
    s, t = torch.tensor([[0.0, 0.0]]), torch.tensor([[math.log(3.0), 0.0]])  # p_t = (3/4, 1/4), p_s = (1/2, 1/2)
    hand = 0.75 * math.log(0.75 / 0.5) + 0.25 * math.log(0.25 / 0.5)
    assert LF.kld_loss(s, t, 1.0).item() == pytest.approx(hand, rel=1e-5)
    # batchmean: a batch of two identical rows has the same loss as one row
    assert LF.kld_loss(s.repeat(2, 1), t.repeat(2, 1), 1.0).item() == pytest.approx(hand, rel=1e-5)


def test_kld_gradient_magnitude_does_not_depend_on_temperature():
    torch.manual_seed(0)
    t = torch.randn(16, 7)
    norms = []
    for temp in (2.0, 4.0, 8.0):
        s = (t + 0.3 * torch.randn(16, 7)).requires_grad_()
        torch.manual_seed(1)
        LF.kld_loss(s, t, temp).backward()
        norms.append(s.grad.norm().item())
    # T^2 scaling: gradients stay within a small factor across T (without it they shrink ~1/T^2: 16x)
    assert max(norms) / min(norms) < 1.5


def test_label_and_hint_losses():
    s, t = torch.randn(4, 3), torch.randn(4, 3)
    assert LF.label_loss(s, t) == pytest.approx(torch.nn.functional.cross_entropy(s, t.argmax(1)).item())
    a, b = torch.zeros(1, 2, 4, 4), torch.ones(1, 2, 2, 2)
    assert LF.hint_loss(a, b).item() == pytest.approx(0.5)  # resized to the teacher's map, 1/2 mean squared error


def test_ce_leaves_out_unlabelled_faces_and_a_batch_of_none_gives_zero():
    s = torch.tensor([[2.0, 0.0], [0.0, 1.0], [5.0, -5.0]], requires_grad=True)
    targets = torch.tensor([0, -1, 1])
    rows = torch.tensor([[2.0, 0.0], [5.0, -5.0]])
    hand = torch.nn.functional.cross_entropy(rows, torch.tensor([0, 1]))
    assert LF.ce_loss(s, targets).item() == pytest.approx(hand.item())
    none = LF.ce_loss(s, torch.tensor([-1, -1, -1]))
    assert none.item() == 0.0
    none.backward()
    assert s.grad is not None and not s.grad.any()


def test_combined_loss_returns_named_weighted_terms():
    loss = CombinedLoss(LossSpec.parse("kld:0.9+label:0.1"), temperature=2.0)
    out = {"student_logits": torch.randn(4, 3), "teacher_logits": torch.randn(4, 3)}
    terms = loss(out)
    assert set(terms) == {"kld", "label", "loss"}
    assert terms["loss"].item() == pytest.approx(terms["kld"].item() + terms["label"].item())
    ref = 0.9 * LF.kld_loss(out["student_logits"], out["teacher_logits"], 2.0)
    assert terms["kld"].item() == pytest.approx(ref.item())
    with pytest.raises(DistillError, match="valid losses"):
        LossSpec.parse("kld+bogus")
