"""Ensembles of teachers with possibly different preprocessing and class orders."""

from __future__ import annotations

import torch
from torch import nn

from distill.config import COMBINE
from distill.errors import DistillError


class Ensemble(nn.Module):
    """Weighted combination of member teachers; forward returns log-probabilities (valid logits).

    prob: log(sum w_i p_i); logit: sum w_i z_i; geometric: log-softmax(sum w_i log p_i). Members whose classes
    are the same set in another order are re-indexed; `mapping` (member class -> ensemble class) merges others.
    """

    def __init__(
        self,
        members: list[nn.Module],
        weights: list[float],
        combine: str = "prob",
        mapping: dict[str, str] | None = None,
    ):
        super().__init__()
        if combine not in COMBINE:
            raise DistillError(f"unknown ensemble combine '{combine}'; valid: {', '.join(COMBINE)}")
        self.members = nn.ModuleList(members)
        self.classes = list(members[0].classes)
        total = float(sum(weights))
        self.weights = [w / total for w in weights]
        self.combine = combine
        self.spec = "+".join(f"{m.spec}@{w:g}" for m, w in zip(members, weights, strict=True))
        self.preprocess = None  # each member applies its own
        mapping = mapping or {}
        for i, m in enumerate(members):
            self.register_buffer(f"index_{i}", self._projection(m, mapping))

    def _projection(self, member, mapping: dict[str, str]) -> torch.Tensor:
        """(C_member, C_ensemble) 0/1 matrix sending each member class to its ensemble class.

        With an explicit mapping, 'cls=-' drops a member class (its mass is discarded and the rest renormalised)
        and, for the 'prob' combination only, a member may lack ensemble classes: it gives them no probability.
        """
        names = [mapping.get(c, c) for c in member.classes]
        unknown = sorted(set(names) - set(self.classes) - {"-"})
        missing = sorted(set(self.classes) - set(names))
        if unknown or (missing and not (mapping and self.combine == "prob")):
            how = "give --class-map member_class=ensemble_class (or member_class=- to drop it)"
            if missing and mapping:
                how = "a member can lack classes only with --combine prob"
            raise DistillError(
                f"teacher {member.spec} has classes {member.classes}, the ensemble {self.classes}: "
                f"not in ensemble {unknown}, missing {missing}; {how}"
            )
        proj = torch.zeros(len(names), len(self.classes))
        for i, n in enumerate(names):
            if n != "-":
                proj[i, self.classes.index(n)] = 1.0
        return proj

    def member_logits(self, rgb01: torch.Tensor) -> list[torch.Tensor]:
        """Each member's log-probabilities in the ensemble's class order."""
        out = []
        for i, m in enumerate(self.members):
            probs = m(rgb01).softmax(1) @ getattr(self, f"index_{i}")
            probs = probs / probs.sum(1, keepdim=True).clamp_min(1e-12)  # renormalise after dropped classes
            out.append(probs.clamp_min(1e-12).log())
        return out

    def forward(self, rgb01: torch.Tensor) -> torch.Tensor:
        if self.combine == "logit":
            z = [m(rgb01) @ getattr(self, f"index_{i}") for i, m in enumerate(self.members)]
            return sum(w * zi for w, zi in zip(self.weights, z, strict=True))
        logp = self.member_logits(rgb01)
        if self.combine == "geometric":
            return sum(w * lp for w, lp in zip(self.weights, logp, strict=True)).log_softmax(1)
        probs = sum(w * lp.exp() for w, lp in zip(self.weights, logp, strict=True))
        return probs.clamp_min(1e-12).log()

    def describe(self) -> dict:
        return {
            "spec": self.spec,
            "classes": self.classes,
            "combine": self.combine,
            "weights": self.weights,
            "members": [m.describe() for m in self.members],
        }
