"""Faces followed across video frames: matched by box overlap and appearance, never across a scene cut, moved
between detections by their own speed, their probabilities smoothed over time. A face seen in one detection round
only stays unconfirmed: it gets no track id and no summary row (a one-frame false detection is not a person)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from distill.faces.detectors import box_iou

MATCH_IOU = 0.3  # a detection continues a track whose (moved) box it overlaps this much (intersection over union)
MIN_SIMILARITY = 0.5  # ... and whose face looks alike (cosine of the appearance vectors below)
MAX_MISSED = 3  # detection rounds a confirmed track may go unseen before it ends
CONFIRM_HITS = 2  # detection rounds that make a face a track
CUT_DISTANCE = 0.45  # a colour-histogram jump this large between two frames is a scene cut (0: same, 1: disjoint)
SPEED_MEMORY = 0.5  # a track's speed: this much of its old estimate, the rest from its last two detections


def appearance(pixels: np.ndarray) -> np.ndarray:
    """A face's look (192,): its aligned crop shrunk to 8x8 RGB, centred and of unit length. It matches the same face
    from frame to frame and tells two different faces apart after a cut; the student's own features would need a
    second output of every exported model."""
    small = np.asarray(Image.fromarray(pixels).resize((8, 8), Image.BILINEAR), np.float32).ravel()
    small -= small.mean()
    return small / (np.linalg.norm(small) + 1e-6)


def colour_histogram(img: Image.Image) -> np.ndarray:
    """(3, 16) per-channel histograms of 64x36 pixels sampled across the frame, each summing to 1: cheap at any
    size (nearest-neighbour sampling reads 2,304 pixels), and blind to small motion."""
    thumb = np.asarray(img.resize((64, 36), Image.NEAREST)).reshape(-1, 3)
    hist = np.stack([np.bincount(thumb[:, c] // 16, minlength=16) for c in range(3)]).astype(np.float32)
    return hist / hist.sum(1, keepdims=True)


def is_cut(before: np.ndarray | None, now: np.ndarray) -> bool:
    """Whether two frames' colour histograms differ by a scene cut (mean total variation distance)."""
    return before is not None and float(0.5 * np.abs(before - now).sum(1).mean()) > CUT_DISTANCE


@dataclass
class Track:
    key: int  # internal, for every candidate
    box: np.ndarray  # (4,) the last detected box
    first: int  # frame index
    last: int
    look: np.ndarray  # appearance() of the last detected face
    id: int | None = None  # given when confirmed
    hits: int = 1
    missed: int = 0
    speed: np.ndarray = field(default_factory=lambda: np.zeros(4))  # box change per frame
    probs: np.ndarray | None = None  # the smoothed probabilities (float64)
    seen: int = -1  # the last frame it was classified in (detected or carried)
    labels: Counter = field(default_factory=Counter)  # frames per (smoothed) label

    def box_at(self, frame: int) -> np.ndarray:
        """Where the face is expected at `frame`, moving at its speed since its last detection."""
        return self.box + self.speed * (frame - self.last)


class Tracker:
    def __init__(self, smooth: float):
        self.smooth = smooth
        self.live: list[Track] = []
        self.ended: list[Track] = []
        self.keys = 0  # candidates made so far
        self.ids = 0  # tracks confirmed so far

    def cut(self) -> None:
        """A scene cut: every track ends (the next detections start new ones)."""
        self.ended += [t for t in self.live if t.id is not None]
        self.live = []

    def match(self, boxes: list[np.ndarray], looks: list[np.ndarray], frame: int) -> list[Track]:
        """The track of each detected face (greedy, best overlap first, among faces that look alike); unmatched
        faces start candidates; a track unseen for MAX_MISSED rounds ends, a candidate unseen once is dropped."""
        pairs = sorted(
            (
                (float(box_iou(t.box_at(frame), np.asarray(b)[None])[0]), ti, bi)
                for ti, t in enumerate(self.live)
                for bi, b in enumerate(boxes)
            ),
            reverse=True,
        )
        chosen: dict[int, Track] = {}
        used: set[int] = set()
        for overlap, ti, bi in pairs:
            if overlap < MATCH_IOU or ti in used or bi in chosen:
                continue
            if float(self.live[ti].look @ looks[bi]) < MIN_SIMILARITY:
                continue
            used.add(ti)
            chosen[bi] = self.live[ti]
            self._update(self.live[ti], boxes[bi], looks[bi], frame)
        for ti, track in enumerate(self.live):
            track.missed = 0 if ti in used else track.missed + 1
        for bi, box in enumerate(boxes):
            if bi not in chosen:
                chosen[bi] = Track(self.keys, np.asarray(box, np.float64), frame, frame, looks[bi])
                self.keys += 1
                self.live.append(chosen[bi])
        done = [t for t in self.live if t.missed > (MAX_MISSED if t.id is not None else 0)]
        self.ended += [t for t in done if t.id is not None]
        self.live = [t for t in self.live if t not in done]
        return [chosen[bi] for bi in range(len(boxes))]

    def _update(self, track: Track, box: np.ndarray, look: np.ndarray, frame: int) -> None:
        box = np.asarray(box, np.float64)
        step = (box - track.box) / max(1, frame - track.last)
        track.speed = step if track.hits == 1 else SPEED_MEMORY * track.speed + (1 - SPEED_MEMORY) * step
        track.box, track.look, track.last = box, look, frame
        track.hits += 1
        if track.id is None and track.hits >= CONFIRM_HITS:
            track.id, self.ids = self.ids, self.ids + 1

    def observe(self, track: Track, probs: np.ndarray, frame: int, classes: list[str]) -> np.ndarray:
        """The track's smoothed probabilities after this frame's (an exponential average)."""
        probs = np.asarray(probs, np.float64)
        track.probs = probs if track.probs is None else self.smooth * track.probs + (1 - self.smooth) * probs
        track.seen = frame
        track.labels[classes[int(track.probs.argmax())]] += 1
        return track.probs

    def summary(self, fps: float) -> list[dict]:
        """Per confirmed track: frames seen, seconds, the dominant emotion and each emotion's share of its frames."""
        rows = []
        for t in sorted((t for t in self.live + self.ended if t.id is not None), key=lambda t: t.id):
            frames = sum(t.labels.values())
            rows.append(
                {
                    "track": t.id,
                    "first_frame": t.first,
                    "last_frame": max(t.seen, t.last),
                    "seconds": round((max(t.seen, t.last) - t.first + 1) / fps, 3),
                    "dominant": t.labels.most_common(1)[0][0],
                    "share": {k: round(v / frames, 4) for k, v in t.labels.most_common()},
                }
            )
        return rows

    def state(self) -> dict:
        """Everything needed to go on from here (JSON-able): predict saves it to resume a stopped run."""
        return {
            "smooth": self.smooth,
            "keys": self.keys,
            "ids": self.ids,
            "live": [_track_state(t) for t in self.live],
            "ended": [_track_state(t) for t in self.ended],
        }

    @classmethod
    def from_state(cls, state: dict) -> Tracker:
        tracker = cls(state["smooth"])
        tracker.keys, tracker.ids = state["keys"], state["ids"]
        tracker.live = [_track_of(s) for s in state["live"]]
        tracker.ended = [_track_of(s) for s in state["ended"]]
        return tracker


def _track_state(t: Track) -> dict:
    arrays = {k: None if v is None else np.asarray(v).tolist() for k, v in (("box", t.box), ("look", t.look))}
    more = {"speed": t.speed.tolist(), "probs": None if t.probs is None else t.probs.tolist(), "seen": t.seen}
    return {"key": t.key, "first": t.first, "last": t.last, "id": t.id, "hits": t.hits, "missed": t.missed} | (
        arrays | more | {"labels": dict(t.labels)}
    )


def _track_of(s: dict) -> Track:
    return Track(
        s["key"],
        np.array(s["box"]),
        s["first"],
        s["last"],
        np.array(s["look"], np.float32),
        s["id"],
        s["hits"],
        s["missed"],
        np.array(s["speed"]),
        None if s["probs"] is None else np.array(s["probs"]),
        s["seen"],
        Counter(s["labels"]),
    )
