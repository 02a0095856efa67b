"""How a model wants its faces framed and normalised (Preprocess), below every model kind: teachers, students,
exported graphs and training all cut stored faces with it."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

GREY = (0.299, 0.587, 0.114)  # ITU-R 601 luma, as OpenCV's BGR2GRAY that Keras FER models were fed with


@dataclass(frozen=True)
class Preprocess:
    """How a model wants its input: x = (resize(centre(rgb01, crop)) [-> grey] - mean) / std, NCHW.

    crop is the model's framing: the central share of the stored face's side it sees. The face store keeps the
    MTCNN box widened by 1.25 (eyes levelled), so crop 1.0 is that framing and 0.8 about the detected box itself."""

    size: int
    grey: bool = False
    mean: tuple[float, ...] = (0.0,)
    std: tuple[float, ...] = (1.0,)
    crop: float = 1.0

    def __call__(self, rgb01: torch.Tensor) -> torch.Tensor:
        # grey first: grey, crop and resize are linear and commute, and one channel costs a third of three
        x = _grey(rgb01) if self.grey else rgb01
        return self._standardise(self._fit(centre(x, self.crop)))

    def frame(self, rgb01: torch.Tensor) -> torch.Tensor:
        """Stored faces (B,3,S,S) as the model's input wants them cut, still RGB in [0, 1]: its framing at its side."""
        return self._fit(centre(rgb01, self.crop))

    def normalise(self, framed: torch.Tensor) -> torch.Tensor:
        """What is left of the preprocessing for faces already cut at the model's framing and side (frame): grey and
        the model's mean and std, elementwise."""
        return self._standardise(_grey(framed) if self.grey else framed)

    def _fit(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.size or x.shape[-2] != self.size:
            x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False, antialias=True)
        return x

    def _standardise(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.new_tensor(self.mean).view(1, -1, 1, 1)
        std = x.new_tensor(self.std).view(1, -1, 1, 1)
        return (x - mean) / std

    def to_dict(self) -> dict:
        """As a cache or checkpoint records it; the store's own framing (crop 1.0) is left out, so records made
        before framings existed still match."""
        record = asdict(self)
        if record["crop"] == 1.0:
            del record["crop"]
        return record

    @property
    def source_side(self) -> int:
        """The side of a stored face whose centre crop gives `size` pixels without upsampling."""
        return math.ceil(self.size / self.crop - 1e-9)

    @property
    def channels(self) -> int:
        return 1 if self.grey else 3


def _grey(rgb: torch.Tensor) -> torch.Tensor:
    """(B,3,H,W) -> (B,1,H,W) luma."""
    return (rgb * rgb.new_tensor(GREY).view(1, 3, 1, 1)).sum(1, keepdim=True)


def centre(x: torch.Tensor, share: float) -> torch.Tensor:
    """The central share x share of faces (B,C,S,S); all of them for share 1."""
    if share >= 1:
        return x
    side = x.shape[-1]
    keep = max(1, round(side * share))
    start = (side - keep) // 2
    return x[..., start : start + keep, start : start + keep]


def _preprocesses(described: dict) -> list[Preprocess]:
    members = described.get("members") or [described]
    return [
        Preprocess(**{k: tuple(v) if isinstance(v, list) else v for k, v in m["preprocess"].items()}) for m in members
    ]


def teacher_input(described: dict) -> tuple[bool, int]:
    """(grey, side) of what a teacher sees, from its describe() record (a cache keeps it): grey if every member of
    an ensemble is grey, the largest member's side."""
    pres = _preprocesses(described)
    return all(p.grey for p in pres), max(p.size for p in pres)


def teacher_framing(described: dict) -> float:
    """A teacher's framing (Preprocess.crop); an ensemble's widest member's, so a student sees all any member saw."""
    return max(p.crop for p in _preprocesses(described))


def source_side(described: dict) -> int:
    """The stored side a teacher's views are made at (its members' largest Preprocess.source_side)."""
    return max(p.source_side for p in _preprocesses(described))


SIGNED = {"mean": (0.5,), "std": (0.5,)}  # (x - 0.5) * 2: [-1, 1], the mini-Xception family
IMAGENET = {"mean": (0.485, 0.456, 0.406), "std": (0.229, 0.224, 0.225)}
