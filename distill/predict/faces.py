"""Faces of a photo or a video frame: the detector's boxes, each cut the way `distill crop` cuts the faces students
learn on (box x 1.25, eyes levelled, 112 px), so a student sees at work what it saw in training."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from distill.config import CropConfig, PredictConfig
from distill.faces.detectors import make_detector, recommended_min_prob
from distill.faces.images import aligned_crop


@dataclass
class Face:
    box: np.ndarray  # (4,) x1, y1, x2, y2 in the image's pixels, inside the image
    landmarks: np.ndarray  # (5, 2): eyes, nose, mouth corners
    prob: float  # the detector's score
    pixels: np.ndarray | None = None  # (S, S, 3) uint8, the aligned crop
    cut_box: np.ndarray | None = None  # (4,) the detector's box, which may reach outside the picture: what is cut

    @property
    def eye_angle(self) -> float:
        """Degrees the eye line is turned from level (positive: the right eye lower in the image)."""
        (lx, ly), (rx, ry) = self.landmarks[0], self.landmarks[1]
        return float(np.degrees(np.arctan2(ry - ly, rx - lx)))


def clip_box(box: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The part of a (4,) box inside a picture of `size` (w, h)."""
    return np.clip(np.asarray(box, np.float64), 0, [size[0], size[1], size[0], size[1]])


class FaceFinder:
    def __init__(self, cfg: PredictConfig, threads: int = 1):
        self.crop = CropConfig(detector=cfg.detector)  # crop's cut: size, margin, eye levelling
        self.detector = make_detector(cfg.detector, cfg.min_face, threads)  # min_face None: a share of each picture
        self.min_prob = cfg.min_prob if cfg.min_prob is not None else recommended_min_prob(cfg.detector)

    def find(self, img: Image.Image) -> list[Face]:
        """The image's faces above the score threshold, most confident first, cut."""
        found = self.detector.detect([img])[0]
        if found is None:
            return []
        order = [i for i in np.argsort(-found.probs, kind="stable") if found.probs[i] >= self.min_prob]
        return [self.cut(img, Face(found.boxes[i], found.landmarks[i], float(found.probs[i]))) for i in order]

    def cut(self, img: Image.Image, face: Face) -> Face:
        """The face with its pixels cut from `img` (a carried box in a later frame is cut again); the box it
        reports is clipped to the picture (the cut itself may reach outside, as crop's does)."""
        box = face.box if face.cut_box is None else face.cut_box
        pixels = aligned_crop(img, box, face.landmarks, self.crop.size, self.crop.margin, self.crop.align)
        return Face(clip_box(box, img.size), face.landmarks, face.prob, pixels, box)
