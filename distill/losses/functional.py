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
