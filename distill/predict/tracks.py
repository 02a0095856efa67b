"""Faces followed across video frames: matched by box overlap and appearance (no jump from the track's own
history), never across a scene cut (a jump in the pixels or the colours of a small copy of the frame), moved
between detections by their own speed, their probabilities smoothed over time. A face seen in one detection round
only stays unconfirmed: it gets no track id and no summary row (a one-frame false detection is not a person)."""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from distill.faces.detectors import box_iou

MATCH_IOU = 0.3  # a detection continues a track whose (moved) box it overlaps this much (intersection over union)
MIN_SIMILARITY = 0.5  # ... and whose face looks alike (cosine of the appearance vectors below) ...
LIKENESS_DROP = 0.3  # ... not this much less alike than the track's faces have been frame to frame, ...
SPREADS = 4.0  # ... nor more than this many times their usual spread below it
LIKENESS_MEMORY = 0.8  # the track's usual likeness and spread: this much of the old estimate, the rest from the new
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


THUMB = (64, 36)  # a frame's signature is read off a copy this small: cheap at any size, blind to sensor noise
PIXEL_JUMP = 3.0  # a cut: the frame's pixel change this many times the clip's typical change between frames ...
PIXEL_MIN = 10.0  # ... and at least this much (mean absolute grey difference, of 255)
TYPICAL_FRAMES = 30  # the typical change: the median of the changes of this many frames before
SHIFT = 2  # thumbnail pixels the pixel change is searched over either way: a pan or a shaken camera is no cut


@dataclass
class Signature:
    """What a cut is told by: colour histograms (3, 16), each summing to 1, and a grey thumbnail (36, 64)."""

    histogram: np.ndarray
    grey: np.ndarray


def signature(img: Image.Image) -> Signature:
    """A frame's Signature, from one 64x36 copy of it (box-filtered: every pixel counts, none is noise)."""
    thumb = np.asarray(img.convert("RGB").resize(THUMB, Image.BOX, reducing_gap=2.0))
    hist = np.stack([np.bincount(thumb[..., c].ravel() // 16, minlength=16) for c in range(3)]).astype(np.float32)
    grey = thumb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    return Signature(hist / hist.sum(1, keepdims=True), grey)


def colour_distance(before: np.ndarray, now: np.ndarray) -> float:
    """Mean total variation distance of two frames' colour histograms (0: the same colours, 1: disjoint)."""
    return float(0.5 * np.abs(before - now).sum(1).mean())


def pixel_change(before: np.ndarray, now: np.ndarray) -> float:
    """Mean absolute difference of two grey thumbnails, at the best shift of up to SHIFT pixels either way: a pan
    or a shaken camera moves the picture a little and changes few pixels once moved back; a cut changes them all."""
    h, w = now.shape
    inner = now[SHIFT : h - SHIFT, SHIFT : w - SHIFT]
    return min(
        float(np.abs(inner - before[SHIFT + dy : h - SHIFT + dy, SHIFT + dx : w - SHIFT + dx]).mean())
        for dy in range(-SHIFT, SHIFT + 1)
        for dx in range(-SHIFT, SHIFT + 1)
    )


class CutDetector:
    """Scene cuts in a stream of frame signatures: a pixel change far above the clip's typical change between
    frames (shots of look-alike colours: a stage and its audience, both lit gold), or colours that jump (CUT_DISTANCE).
    Its state after any frame can be saved and resumed (state / from_state)."""

    def __init__(self, last: Signature | None = None, changes: list[float] | None = None):
        self.last = last
        self.changes: deque[float] = deque(changes or [], maxlen=TYPICAL_FRAMES)

    def __call__(self, now: Signature) -> bool:
        """Whether `now` starts a new shot; it becomes the frame the next one is compared with."""
        before, self.last = self.last, now
        if before is None:
            return False
        change = pixel_change(before.grey, now.grey)
        typical = float(np.median(self.changes)) if self.changes else None
        self.changes.append(change)
        jump = typical is not None and change > max(PIXEL_MIN, PIXEL_JUMP * typical)
        return jump or colour_distance(before.histogram, now.histogram) > CUT_DISTANCE

    def state(self) -> dict:
        last = self.last
        saved = None if last is None else {"histogram": last.histogram.tolist(), "grey": last.grey.tolist()}
        return {"last": saved, "changes": list(self.changes)}

    @classmethod
    def from_state(cls, state: dict | None) -> CutDetector:
        if not state or state.get("last") is None:
            return cls(None, (state or {}).get("changes"))
        last = Signature(np.array(state["last"]["histogram"], np.float32), np.array(state["last"]["grey"], np.float32))
        return cls(last, state["changes"])


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
    shown: str | None = None  # the (smoothed) label of the frame it was last classified in
    flips: int = 0  # frames whose (smoothed) label differs from the frame's before
    likeness: float | None = None  # the usual similarity of its faces from one detection to the next
    spread: float = 0.0  # the usual distance of that similarity from `likeness`

    def accepts(self, similarity: float) -> bool:
        """Whether a face this similar to the track's last one continues it: alike in general, and no jump against
        the track's own history (a cut to a look-alike person in the same place drops the similarity at once)."""
        if similarity < MIN_SIMILARITY:
            return False
        return self.likeness is None or similarity >= self.likeness - max(LIKENESS_DROP, SPREADS * self.spread)

    def remember(self, similarity: float) -> None:
        if self.likeness is None:
            self.likeness = similarity
            return
        self.spread = LIKENESS_MEMORY * self.spread + (1 - LIKENESS_MEMORY) * abs(similarity - self.likeness)
        self.likeness = LIKENESS_MEMORY * self.likeness + (1 - LIKENESS_MEMORY) * similarity

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
        self.cuts: list[int] = []  # the frames that began a new shot

    def cut(self, frame: int) -> None:
        """A scene cut before `frame`: every track ends (the next detections start new ones)."""
        self.ended += [t for t in self.live if t.id is not None]
        self.live = []
        self.cuts.append(frame)

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
            similarity = float(self.live[ti].look @ looks[bi])
            if not self.live[ti].accepts(similarity):
                continue
            self.live[ti].remember(similarity)
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
        label = classes[int(track.probs.argmax())]
        track.flips += bool(track.labels) and label != track.shown
        track.labels[label] += 1
        track.shown = label
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
                    "label_flips_per_s": round(t.flips * fps / frames, 3),
                    "share": {k: round(v / frames, 4) for k, v in t.labels.most_common()},
                }
            )
        return rows

    def flips_per_track_second(self, fps: float) -> float | None:
        """How often a confirmed track's shown label changes, per second it is seen, over all tracks (None: none)."""
        tracks = [t for t in self.live + self.ended if t.id is not None]
        frames = sum(sum(t.labels.values()) for t in tracks)
        return round(sum(t.flips for t in tracks) * fps / frames, 3) if frames else None

    def state(self) -> dict:
        """Everything needed to go on from here (JSON-able): predict saves it to resume a stopped run."""
        return {
            "smooth": self.smooth,
            "keys": self.keys,
            "ids": self.ids,
            "cuts": self.cuts,
            "live": [_track_state(t) for t in self.live],
            "ended": [_track_state(t) for t in self.ended],
        }

    @classmethod
    def from_state(cls, state: dict) -> Tracker:
        tracker = cls(state["smooth"])
        tracker.keys, tracker.ids, tracker.cuts = state["keys"], state["ids"], state.get("cuts", [])
        tracker.live = [_track_of(s) for s in state["live"]]
        tracker.ended = [_track_of(s) for s in state["ended"]]
        return tracker


def _track_state(t: Track) -> dict:
    arrays = {k: None if v is None else np.asarray(v).tolist() for k, v in (("box", t.box), ("look", t.look))}
    more = {"speed": t.speed.tolist(), "probs": None if t.probs is None else t.probs.tolist(), "seen": t.seen}
    more |= {"likeness": t.likeness, "spread": t.spread, "flips": t.flips, "shown": t.shown}
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
        s.get("shown"),
        s.get("flips", 0),
        s.get("likeness"),
        s.get("spread", 0.0),
    )
