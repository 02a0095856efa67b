"""Conditions a labelled set is scored under beside the plain photos (the robustness check of issue #54): the same
photos dark and warm-lit, as a dim room or a stage, or shrunk so the face is small in its frame, as footage gives
them. Each photo is changed before its face is found, so the detector meets the condition as it would at work."""

from __future__ import annotations

import numpy as np
from PIL import Image

from distill.datasets.readers import Sample
from distill.faces.images import BadImage, load_rgb

GAMMA = 2.2  # darkens mid-tones as an under-exposed shot: 0.5 -> 0.22
WARM = (1.0, 0.85, 0.65)  # R, G, B gains of tungsten or stage light
SHRINK = 4  # the photo's sides shrunk this much inside a frame of its own size


def dark(rgb: np.ndarray) -> np.ndarray:
    """uint8 (H,W,3) under-exposed (gamma 2.2) and warm-lit."""
    x = (rgb.astype(np.float32) / 255) ** GAMMA * np.asarray(WARM, np.float32)
    return np.clip(x * 255 + 0.5, 0, 255).astype(np.uint8)


def small(rgb: np.ndarray) -> np.ndarray:
    """uint8 (H,W,3) shrunk SHRINK times (antialiased) in the middle of a frame of its size, filled with its mean
    colour: the face a quarter as wide, its detail gone as in a wide shot."""
    h, w = rgb.shape[:2]
    shrunk = np.asarray(Image.fromarray(rgb).resize((max(1, w // SHRINK), max(1, h // SHRINK)), Image.Resampling.BOX))
    canvas = np.empty_like(rgb)
    canvas[...] = rgb.reshape(-1, 3).mean(0).astype(np.uint8)
    top, left = (h - shrunk.shape[0]) // 2, (w - shrunk.shape[1]) // 2
    canvas[top : top + shrunk.shape[0], left : left + shrunk.shape[1]] = shrunk
    return canvas


CHANGES = {"dark": dark, "small": small}  # config.CONDITIONS names them, and "plain" (no change)


def under(condition: str, samples: list[Sample]) -> list[Sample]:
    """The samples under `condition`, their photos decoded and changed in memory; plain ones as they are. A photo
    that cannot be read stays as it is, for crop to record with its reason."""
    if condition == "plain":
        return samples
    change = CHANGES[condition]
    out = []
    for s in samples:
        try:
            rgb = np.asarray(load_rgb(s.path)[0]) if s.pixels is None else s.pixels
        except BadImage:
            out.append(s)
            continue
        if rgb.ndim == 2:
            rgb = np.stack([rgb] * 3, -1)
        out.append(Sample(s.key, None, change(rgb), s.label, {**s.meta, "condition": condition}))
    return out
