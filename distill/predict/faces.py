"""Faces of a photo or a video frame: MTCNN detections, each cut the way `distill crop` cuts the faces students
learn on (box x 1.25, eyes levelled, 112 px), so a student sees at work what it saw in training."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from distill.config import CropConfig, PredictConfig
from distill.faces.crop import detect, make_detector
from distill.faces.images import aligned_crop


@dataclass
class Face:
    box: np.ndarray  # (4,) x1, y1, x2, y2 in the image's pixels
    landmarks: np.ndarray  # (5, 2): eyes, nose, mouth corners
    prob: float  # MTCNN's detection probability
    pixels: np.ndarray | None = None  # (S, S, 3) uint8, the aligned crop

    @property
    def eye_angle(self) -> float:
        """Degrees the eye line is turned from level (positive: the right eye lower in the image)."""
        (lx, ly), (rx, ry) = self.landmarks[0], self.landmarks[1]
        return float(np.degrees(np.arctan2(ry - ly, rx - lx)))


class FaceFinder:
    def __init__(self, cfg: PredictConfig):
        self.crop = CropConfig(min_prob=cfg.min_prob, min_face=cfg.min_face)
        self.detector = make_detector(self.crop)

    def find(self, img: Image.Image) -> list[Face]:
        """The image's faces above the probability threshold, most confident first, cut."""
        found = detect(self.detector, [img])[0]
        if found is None:
            return []
        boxes, probs, points = found
        order = [i for i in np.argsort(-probs, kind="stable") if probs[i] >= self.crop.min_prob]
        return [self.cut(img, Face(boxes[i], points[i], float(probs[i]))) for i in order]

    def cut(self, img: Image.Image, face: Face) -> Face:
        """The face with its pixels cut from `img` (a carried box in a later frame is cut again)."""
        pixels = aligned_crop(img, face.box, face.landmarks, self.crop.size, self.crop.margin, self.crop.align)
        return Face(face.box, face.landmarks, face.prob, pixels)
