"""Parametrised face augmentation, identical at label time (teacher) and train time (student).

A view is 7 numbers: flip, angle (rad), scale, tx, ty (fractions of half the side), brightness, contrast.
Applying stored parameters reproduces the exact view the teacher saw ("consistent teaching").
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from distill.config import AugmentConfig

N_PARAMS = 7
IDENTITY = np.array([0, 0, 1, 0, 0, 1, 1], np.float32)


def sample_params(n: int, cfg: AugmentConfig, rng: np.random.Generator) -> np.ndarray:
    """(n, 7) float32 view parameters."""
    return np.stack(
        [
            (rng.random(n) < cfg.flip).astype(np.float32),
            np.deg2rad(rng.uniform(-cfg.degrees, cfg.degrees, n)),
            rng.uniform(*cfg.scale, n),
            rng.uniform(-cfg.shift, cfg.shift, n),
            rng.uniform(-cfg.shift, cfg.shift, n),
            rng.uniform(1 - cfg.brightness, 1 + cfg.brightness, n),
            rng.uniform(1 - cfg.contrast, 1 + cfg.contrast, n),
        ],
        axis=1,
    ).astype(np.float32)


def random_view(cfg: AugmentConfig) -> np.ndarray:
    """One fresh (7,) view drawn from torch's generator (seeded per DataLoader worker by Lightning)."""
    return sample_params(1, cfg, np.random.default_rng(int(torch.randint(2**62, ()).item())))[0]


def view_params(face_index: int, views: int, cfg: AugmentConfig, seed: int) -> np.ndarray:
    """Deterministic per face (seed, index): a resumed run draws exactly the same views."""
    return sample_params(views, cfg, np.random.default_rng([seed, face_index]))


def apply_views(x01: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
    """x01 (B,C,H,W) in [0,1], params (B,7) -> augmented (B,C,H,W); borders replicate, no black wedges."""
    flip, angle, scale, tx, ty, bright, contrast = params.to(x01.dtype).unbind(1)
    sign = 1 - 2 * flip  # -1 flips x
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos * sign, -sin, tx], 1), torch.stack([sin * sign, cos, ty], 1)], 1)
    grid = F.affine_grid(theta, list(x01.shape), align_corners=False)
    out = F.grid_sample(x01, grid, mode="bilinear", padding_mode="border", align_corners=False)
    mean = out.mean(dim=(1, 2, 3), keepdim=True)
    out = (out - mean) * contrast.view(-1, 1, 1, 1) + mean * bright.view(-1, 1, 1, 1)
    return out.clamp(0, 1)


def resize(x01: torch.Tensor, side: int) -> torch.Tensor:
    """(B,C,H,W) -> (B,C,side,side), antialiased as a model's Preprocess resizes; unchanged when it already fits."""
    if x01.shape[-1] == side and x01.shape[-2] == side:
        return x01
    return F.interpolate(x01, size=(side, side), mode="bilinear", align_corners=False, antialias=True)


def views_at(x01: torch.Tensor, params: torch.Tensor, side: int) -> torch.Tensor:
    """The views `params` of faces x01 (B,3,S,S), at side x side: resized first, then warped, so the warp (the
    costliest part of a training step's input) runs at the model's side, not the store's (112 -> 64: 3x fewer
    pixels). Label and train both make views this way, so the student sees the teacher's exact pixels. Never
    upsamples (the model's preprocessing does, where it must)."""
    return apply_views(resize(x01, min(side, x01.shape[-1])), params)


def to_float(pixels: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 (B,H,W,3) -> float (B,3,H,W) in [0,1]."""
    t = torch.as_tensor(pixels)
    return t.permute(0, 3, 1, 2).float().div_(255)
