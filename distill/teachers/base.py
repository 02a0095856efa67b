"""A teacher: a network plus its own preprocessing and class names, fed RGB faces in [0, 1]."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

GREY = (0.299, 0.587, 0.114)  # ITU-R 601 luma, as OpenCV's BGR2GRAY that Keras FER models were fed with


@dataclass(frozen=True)
class Preprocess:
    """How a model wants its input: x = (resize(rgb01) [-> grey] - mean) / std, NCHW."""

    size: int
    grey: bool = False
    mean: tuple[float, ...] = (0.0,)
    std: tuple[float, ...] = (1.0,)

    def __call__(self, rgb01: torch.Tensor) -> torch.Tensor:
        x = rgb01
        if x.shape[-1] != self.size or x.shape[-2] != self.size:
            x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False, antialias=True)
        if self.grey:
            x = (x * x.new_tensor(GREY).view(1, 3, 1, 1)).sum(1, keepdim=True)
        mean = x.new_tensor(self.mean).view(1, -1, 1, 1)
        std = x.new_tensor(self.std).view(1, -1, 1, 1)
        return (x - mean) / std

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def channels(self) -> int:
        return 1 if self.grey else 3


def teacher_input(described: dict) -> tuple[bool, int]:
    """(grey, side) of what a teacher sees, from its describe() record (a cache keeps it): grey if every member of
    an ensemble is grey, the largest member's side."""
    members = described.get("members") or [described]
    pres = [m["preprocess"] for m in members]
    return all(p.get("grey", False) for p in pres), max(int(p["size"]) for p in pres)


SIGNED = {"mean": (0.5,), "std": (0.5,)}  # (x - 0.5) * 2: [-1, 1], the mini-Xception family
IMAGENET = {"mean": (0.485, 0.456, 0.406), "std": (0.229, 0.224, 0.225)}


class Teacher(nn.Module):
    """Frozen, eval-mode network; forward takes RGB faces in [0, 1] (B,3,H,W) and returns logits (B,C)."""

    def __init__(self, net: nn.Module, classes: list[str], preprocess: Preprocess, spec: str, weights_sha: str):
        super().__init__()
        self.net = net.eval()
        self.classes = list(classes)
        self.preprocess = preprocess
        self.spec = spec
        self.weights_sha = weights_sha
        for p in self.parameters():
            p.requires_grad_(False)

    def train(self, mode: bool = True) -> Teacher:  # a teacher never leaves eval mode (BN statistics, dropout)
        return super().train(False)

    def forward(self, rgb01: torch.Tensor) -> torch.Tensor:
        return self.net(self.preprocess(rgb01))

    def describe(self) -> dict:
        return {
            "spec": self.spec,
            "classes": self.classes,
            "preprocess": self.preprocess.to_dict(),
            "weights_sha256": self.weights_sha,
        }
