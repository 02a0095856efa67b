"""Thin loss modules and weighted combinations ('kld:0.9+label:0.1'); each returns named, weighted terms."""

from __future__ import annotations

import torch
from torch import nn

from distill.losses import functional as LF
from distill.registry import LOSSES
from distill.specs import LossSpec


class LogitLoss(nn.Module):
    """A loss of (student logits, teacher logits) with fixed settings: fn(s, t, **settings)."""

    needs = ()

    def __init__(self, fn, **settings):
        super().__init__()
        self.fn, self.settings = fn, settings

    def forward(self, out: dict) -> torch.Tensor:
        return self.fn(out["student_logits"], out["teacher_logits"], **self.settings)


class CELoss(nn.Module):
    needs = ()

    def forward(self, out: dict) -> torch.Tensor:
        return LF.ce_loss(out["student_logits"], out["targets"])


class HintLoss(nn.Module):
    """Needs student and teacher feature maps; the regressor (1x1 conv) is trained with the student and is
    not part of the exported student."""

    needs = ("features",)

    def __init__(self, student_channels: int, teacher_channels: int):
        super().__init__()
        self.regressor = nn.Conv2d(student_channels, teacher_channels, 1)

    def forward(self, out: dict) -> torch.Tensor:
        return LF.hint_loss(self.regressor(out["student_features"]), out["teacher_features"])


@LOSSES.register("label")
def label(**_) -> nn.Module:
    """Cross-entropy to the teacher's argmax (label-only)."""
    return LogitLoss(LF.label_loss)


@LOSSES.register("kld")
def kld(temperature: float, **_) -> nn.Module:
    """Hinton KD: T^2 * KL(teacher || student) on temperature-softened posteriors, batch mean."""
    return LogitLoss(LF.kld_loss, temperature=temperature)


DKD_RECIPE = {"alpha": 1.0, "beta": 8.0}  # the paper's (and mdistiller's) CIFAR-100 setting
DIST_RECIPE = {"inter": 1.0, "intra": 1.0}  # the paper's beta and gamma


@LOSSES.register("dkd", recommended=DKD_RECIPE)
def dkd(temperature: float, **_) -> nn.Module:
    """Decoupled KD (Zhao et al. 2022): the target class's and the other classes' parts of KD, weighted apart."""
    return LogitLoss(LF.dkd_loss, temperature=temperature, **DKD_RECIPE)


@LOSSES.register("dist", recommended=DIST_RECIPE)
def dist(temperature: float, **_) -> nn.Module:
    """DIST (Huang et al. 2022): the teacher's inter- and intra-class relations (Pearson correlation) matched."""
    return LogitLoss(LF.dist_loss, temperature=temperature, **DIST_RECIPE)


@LOSSES.register("kld_std")
def kld_std(temperature: float, **_) -> nn.Module:
    """KD on z-scored logits (Sun et al. 2024, logit standardisation): the shape of the teacher's logits, not their
    scale."""
    return LogitLoss(LF.kld_std_loss, temperature=temperature)


@LOSSES.register("ce", needs={"labels"})
def ce(**_) -> nn.Module:
    """Cross-entropy to the face store's own labels (a labelled set); faces without one are left out."""
    return CELoss()


@LOSSES.register("hint", needs={"features", "teacher"})
def hint(student_channels: int = 0, teacher_channels: int = 0, **_) -> nn.Module:
    """FitNets: MSE between a teacher layer and the student's last features through a learned regressor."""
    return HintLoss(student_channels, teacher_channels)


class CombinedLoss(nn.Module):
    """Sum of weighted terms; forward returns {'loss': total, 'kld': w*kld, ...}."""

    def __init__(self, spec: LossSpec, **options):
        super().__init__()
        self.weights = dict(spec.terms)
        self.terms = nn.ModuleDict({n: LOSSES.get(n)(**options) for n in self.weights})

    @property
    def needs_features(self) -> bool:
        return any("features" in t.needs for t in self.terms.values())

    def forward(self, out: dict, only: set[str] | None = None) -> dict[str, torch.Tensor]:
        named = {n: self.weights[n] * t(out) for n, t in self.terms.items() if only is None or n in only}
        named["loss"] = sum(named.values())
        return named
