"""A teacher: a network plus its own preprocessing and class names, fed RGB faces in [0, 1]."""

from __future__ import annotations

import torch
from torch import nn

from distill.faces.framing import Preprocess


class Teacher(nn.Module):
    """Frozen, eval-mode network; forward takes RGB faces in [0, 1] (B,3,H,W) and returns logits (B,C).

    mirror: each face's posterior is the mean of its own and its mirror image's (returned as log-probabilities),
    test-time augmentation that costs a second pass; fit-teacher's checkpoints ask for it (docs/results.md)."""

    def __init__(
        self,
        net: nn.Module,
        classes: list[str],
        preprocess: Preprocess,
        spec: str,
        weights_sha: str,
        mirror: bool = False,
    ):
        super().__init__()
        self.net = net.eval()
        self.classes = list(classes)
        self.preprocess = preprocess
        self.spec = spec
        self.weights_sha = weights_sha
        self.mirror = mirror
        for p in self.parameters():
            p.requires_grad_(False)

    def train(self, mode: bool = True) -> Teacher:  # a teacher never leaves eval mode (BN statistics, dropout)
        return super().train(False)

    def forward(self, rgb01: torch.Tensor) -> torch.Tensor:
        x = self.preprocess(rgb01)
        return mirror_averaged(self.net, x) if self.mirror else self.net(x)

    def describe(self) -> dict:
        record = {
            "spec": self.spec,
            "classes": self.classes,
            "preprocess": self.preprocess.to_dict(),
            "weights_sha256": self.weights_sha,
        }
        return record | ({"mirror": True} if self.mirror else {})  # caches made before the option still match


def mirror_averaged(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """log of the mean of net's softmax over x (B,C,H,W) and its horizontal mirror: (B,classes), one batched pass."""
    both = net(torch.cat([x, x.flip(-1)])).float().softmax(1)  # (2B, classes)
    return ((both[: len(x)] + both[len(x) :]) / 2).clamp_min(1e-12).log()
