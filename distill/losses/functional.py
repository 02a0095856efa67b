"""Pure loss functions on tensors. Shapes: logits (B,C); features (B,C,h,w)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def label_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> torch.Tensor:
    """Cross-entropy to the teacher's argmax ('label-only' in Rassadin & Savchenko)."""
    return F.cross_entropy(student_logits, teacher_logits.argmax(1))


def kld_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """Hinton et al.: T^2 * KL(p_T^T || p_S^T), averaged over the batch (not over classes).

    The T^2 factor keeps gradient magnitudes comparable across temperatures; 'batchmean' is the reduction
    that is the true KL divergence (F.kl_div's default 'mean' divides by C as well).
    """
    t = temperature
    log_p_s = F.log_softmax(student_logits / t, dim=1)
    log_p_t = F.log_softmax(teacher_logits / t, dim=1)
    return F.kl_div(log_p_s, log_p_t, reduction="batchmean", log_target=True) * t * t


def hint_loss(regressed_student: torch.Tensor, teacher_features: torch.Tensor) -> torch.Tensor:
    """FitNets (Romero et al.): 1/2 ||u_T - r(u_S)||^2, averaged over elements."""
    if regressed_student.shape[-2:] != teacher_features.shape[-2:]:
        regressed_student = F.interpolate(
            regressed_student, size=teacher_features.shape[-2:], mode="bilinear", align_corners=False
        )
    return 0.5 * F.mse_loss(regressed_student, teacher_features)


def ce_loss(student_logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Plain cross-entropy to ground-truth labels (when a labelled set is given); targets (B,) with -1 for faces
    without a label, which are left out (a batch of none gives 0, not NaN)."""
    known = targets >= 0
    if not known.any():
        return student_logits.sum() * 0.0  # keeps the graph (and DDP's gradient all-reduce) intact
    return F.cross_entropy(student_logits[known], targets[known])


def dkd_parts(
    student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Decoupled KD's two parts (Zhao et al. 2022), each T^2-scaled and batch-averaged: TCKD, the KL of the binary
    target-vs-rest split, and NCKD, the KL over the non-target classes alone. The target is the teacher's argmax
    (no labels here). Hinton's KD is TCKD + (1 - p_t(target)) * NCKD per face: DKD weighs the two freely."""
    t = temperature
    target = F.one_hot(teacher_logits.argmax(1), student_logits.shape[1]).bool()  # (B,C)
    p_s, p_t = F.softmax(student_logits / t, dim=1), F.softmax(teacher_logits / t, dim=1)
    b_s = torch.stack([(p_s * target).sum(1), (p_s * ~target).sum(1)], 1)  # (B,2): target, the rest
    b_t = torch.stack([(p_t * target).sum(1), (p_t * ~target).sum(1)], 1)
    tckd = F.kl_div(b_s.clamp_min(1e-12).log(), b_t, reduction="batchmean") * t * t
    # the target class pushed out of the softmax (a large finite shift, as the reference: -inf would give 0 * inf)
    log_q_s = F.log_softmax(student_logits / t - 1000.0 * target, dim=1)
    q_t = F.softmax(teacher_logits / t - 1000.0 * target, dim=1)
    nckd = F.kl_div(log_q_s, q_t, reduction="batchmean") * t * t
    return tckd, nckd


def dkd_loss(
    student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float, alpha: float, beta: float
) -> torch.Tensor:
    """Decoupled KD: alpha * TCKD + beta * NCKD (dkd_parts)."""
    tckd, nckd = dkd_parts(student_logits, teacher_logits, temperature)
    return alpha * tckd + beta * nckd


def _pearson(a: torch.Tensor, b: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Pearson correlation of each row of a and b (B,C): (B,)."""
    a, b = a - a.mean(1, keepdim=True), b - b.mean(1, keepdim=True)
    return (a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1) + eps)


def dist_loss(
    student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float, inter: float, intra: float
) -> torch.Tensor:
    """DIST (Huang et al. 2022): match the teacher's relations, not its exact probabilities: 1 - Pearson correlation
    of each face's class probabilities (inter-class) and of each class's probabilities over the batch (intra-class),
    T^2-scaled. A student that ranks like its teacher but is less sure is not punished."""
    t = temperature
    p_s, p_t = F.softmax(student_logits / t, dim=1), F.softmax(teacher_logits / t, dim=1)  # (B,C)
    inter_loss = 1 - _pearson(p_s, p_t).mean()
    intra_loss = 1 - _pearson(p_s.T, p_t.T).mean()
    return t * t * (inter * inter_loss + intra * intra_loss)


def standardised(logits: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """Each row's logits z-scored (mean 0, sample standard deviation 1): (B,C)."""
    return (logits - logits.mean(1, keepdim=True)) / (logits.std(1, keepdim=True) + eps)


def kld_std_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """KD on standardised logits (Sun et al. 2024, logit standardisation): the student matches the shape of the
    teacher's logits, not their scale, so a small student need not reach a big teacher's logit range."""
    return kld_loss(standardised(student_logits), standardised(teacher_logits), temperature)
