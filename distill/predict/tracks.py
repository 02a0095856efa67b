"""Faces followed across video frames: matched by box overlap, their probabilities smoothed over time."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

MATCH_IOU = 0.3  # a detection continues a track whose last box it overlaps this much (intersection over union)
MAX_MISSED = 3  # detection rounds a track may go unseen before it ends


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two (4,) boxes x1, y1, x2, y2."""
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


@dataclass
class Track:
    id: int
    box: np.ndarray
    first: int  # frame index
    last: int
    probs: np.ndarray | None = None  # the smoothed probabilities
    missed: int = 0
    labels: Counter = field(default_factory=Counter)  # frames per (smoothed) label


class Tracker:
    def __init__(self, smooth: float):
        self.smooth = smooth
        self.live: list[Track] = []
        self.ended: list[Track] = []

    def match(self, boxes: list[np.ndarray], frame: int) -> list[Track]:
        """The track of each box of a detection round (greedy, best overlap first); unmatched boxes start tracks,
        tracks unseen for MAX_MISSED rounds end."""
        pairs = sorted(
            ((iou(t.box, b), ti, bi) for ti, t in enumerate(self.live) for bi, b in enumerate(boxes)), reverse=True
        )
        chosen: dict[int, Track] = {}
        used: set[int] = set()
        for overlap, ti, bi in pairs:
            if overlap < MATCH_IOU or ti in used or bi in chosen:
                continue
            used.add(ti)
            chosen[bi] = self.live[ti]
        for ti, track in enumerate(self.live):
            track.missed = 0 if ti in used else track.missed + 1
        for bi, box in enumerate(boxes):
            if bi not in chosen:
                chosen[bi] = Track(len(self.live) + len(self.ended), box, frame, frame)
                self.live.append(chosen[bi])
            chosen[bi].box, chosen[bi].last = box, frame
        self.ended += [t for t in self.live if t.missed > MAX_MISSED]
        self.live = [t for t in self.live if t.missed <= MAX_MISSED]
        return [chosen[bi] for bi in range(len(boxes))]

    def observe(self, track: Track, probs: np.ndarray, frame: int, classes: list[str]) -> np.ndarray:
        """The track's smoothed probabilities after this frame's (an exponential average)."""
        track.probs = probs if track.probs is None else self.smooth * track.probs + (1 - self.smooth) * probs
        track.last = frame
        track.labels[classes[int(track.probs.argmax())]] += 1
        return track.probs

    def summary(self, fps: float) -> list[dict]:
        """Per track: frames seen, seconds, the dominant emotion and each emotion's share of its frames."""
        rows = []
        for t in sorted(self.live + self.ended, key=lambda t: t.id):
            frames = sum(t.labels.values())
            if not frames:
                continue
            rows.append(
                {
                    "track": t.id,
                    "first_frame": t.first,
                    "last_frame": t.last,
                    "seconds": round((t.last - t.first + 1) / fps, 3),
                    "dominant": t.labels.most_common(1)[0][0],
                    "share": {k: round(v / frames, 4) for k, v in t.labels.most_common()},
                }
            )
        return rows
