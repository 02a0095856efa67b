"""DKD, DIST and logit standardisation against their papers' reference formulations on fixed tensors.

Each oracle below follows the authors' published code step by step (mdistiller's DKD with its masks and
`cat_mask`; DIST_KD's centred cosine similarity; logit-standardization-KD's `normalize`), written out in numpy so it
shares nothing with distill's torch implementation but the formula."""

import numpy as np
import pytest
import torch

from distill.losses import functional as LF
from distill.losses.modules import CombinedLoss
from distill.specs import LossSpec


def _fixed(b: int = 6, c: int = 7, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return 3 * torch.randn(b, c, generator=g, dtype=torch.float64), 3 * torch.randn(
        b, c, generator=g, dtype=torch.float64
    )


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def _kl_sum(log_q: np.ndarray, p: np.ndarray) -> float:
    """F.kl_div(log_q, p, reduction='sum') as the references call it (size_average=False)."""
    return float(np.where(p > 0, p * (np.log(np.where(p > 0, p, 1)) - log_q), 0).sum())


def _dkd_reference(s: np.ndarray, t: np.ndarray, target: np.ndarray, alpha: float, beta: float, temp: float) -> float:
    gt = np.zeros_like(s, bool)
    gt[np.arange(len(s)), target] = True
    p_s, p_t = _softmax(s / temp), _softmax(t / temp)
    cat = lambda p: np.stack([(p * gt).sum(1), (p * ~gt).sum(1)], 1)  # noqa: E731 - mdistiller's cat_mask
    tckd = _kl_sum(np.log(cat(p_s)), cat(p_t)) * temp**2 / len(s)
    part2_t = _softmax(t / temp - 1000.0 * gt)
    part2_s = np.log(_softmax(s / temp - 1000.0 * gt))
    nckd = _kl_sum(part2_s, part2_t) * temp**2 / len(s)
    return alpha * tckd + beta * nckd


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the reference's log(0) at the pushed-out class, masked
@pytest.mark.parametrize("temp", [1.0, 4.0])
def test_dkd_matches_mdistillers_formulation(temp):
    s, t = _fixed()
    want = _dkd_reference(s.numpy(), t.numpy(), t.argmax(1).numpy(), 1.0, 8.0, temp)
    assert LF.dkd_loss(s, t, temp, alpha=1.0, beta=8.0).item() == pytest.approx(want, rel=1e-9)


def test_dkd_decouples_hintons_kd():
    """The paper's equation 7: KD = TCKD + (1 - p_t(target)) * NCKD, face by face."""
    s, t = _fixed(b=1)
    for temp in (1.0, 2.0, 4.0):
        tckd, nckd = LF.dkd_parts(s, t, temp)
        p_target = torch.softmax(t / temp, 1).max()
        assert LF.kld_loss(s, t, temp).item() == pytest.approx((tckd + (1 - p_target) * nckd).item(), rel=1e-9)


def _pearson_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.array([np.corrcoef(x, y)[0, 1] for x, y in zip(a, b, strict=True)])


@pytest.mark.parametrize("temp", [1.0, 4.0])
def test_dist_matches_the_papers_formulation(temp):
    s, t = _fixed()
    p_s, p_t = _softmax(s.numpy() / temp), _softmax(t.numpy() / temp)
    inter = 1 - _pearson_rows(p_s, p_t).mean()
    intra = 1 - _pearson_rows(p_s.T, p_t.T).mean()
    want = temp**2 * (1.0 * inter + 2.0 * intra)
    assert LF.dist_loss(s, t, temp, inter=1.0, intra=2.0).item() == pytest.approx(want, rel=1e-6)


def test_dist_does_not_punish_a_student_that_ranks_like_its_teacher():
    _, t = _fixed()
    probs = torch.softmax(t, 1)
    calmer = torch.log(0.5 * probs + 0.5 / t.shape[1])  # the same ranking and shape, half as sure
    assert LF.dist_loss(calmer, t, 1.0, 1.0, 0.0).item() == pytest.approx(0.0, abs=1e-6)  # eps 1e-8 aside
    assert LF.kld_loss(calmer, t, 1.0).item() > 0.01


def test_logit_standardisation_matches_the_papers_normalize_and_ignores_scale():
    s, t = _fixed()
    z = lambda x: (x - x.mean(1, keepdims=True)) / (1e-7 + x.std(1, ddof=1, keepdims=True))  # noqa: E731
    log_p_s = np.log(_softmax(z(s.numpy()) / 2.0))
    p_t = _softmax(z(t.numpy()) / 2.0)
    want = _kl_sum(log_p_s, p_t) / len(s) * 4.0
    assert LF.kld_std_loss(s, t, 2.0).item() == pytest.approx(want, rel=1e-9)
    rescaled = 5 * t + torch.arange(len(t), dtype=t.dtype)[:, None]  # each face's logits scaled and shifted
    assert LF.kld_std_loss(s, rescaled, 2.0).item() == pytest.approx(LF.kld_std_loss(s, t, 2.0).item(), rel=1e-6)


@pytest.mark.parametrize("name", ["dkd", "dist", "kld_std"])
def test_the_new_losses_train_a_student_towards_its_teacher(name):
    torch.manual_seed(0)
    teacher = torch.randn(32, 7) * 3
    student = torch.zeros(32, 7, requires_grad=True)
    loss = CombinedLoss(LossSpec.parse(name), temperature=1.0)
    opt = torch.optim.Adam([student], lr=0.05)
    losses = []
    for _ in range(300):
        opt.zero_grad()
        losses.append(loss({"student_logits": student, "teacher_logits": teacher})["loss"])
        losses[-1].backward()
        opt.step()
    agreement = (student.argmax(1) == teacher.argmax(1)).float().mean().item()
    assert agreement >= 0.95 and losses[-1].item() < 0.5 * losses[0].item()
