"""What predict writes: one CSV row per face (and per photo or frame without one), flushed as each photo or frame
finishes so a stopped run keeps its rows and can go on after them, the same rows as JSON at the end, and annotated
pictures whose labels never cover each other."""

from __future__ import annotations

import csv
import functools
import json
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from distill.predict.faces import Face
from distill.storage.files import write_json

COLUMNS = ["source", "frame", "time_s", "face", "track", "x1", "y1", "x2", "y2", "eye_angle", "det_prob", "label"]
BOX_COLOUR, TEXT_COLOUR = (255, 210, 0), (0, 0, 0)


class Rows:
    """predictions.csv, flushed after every photo or frame, and predictions.json beside it on close(). With
    `resume_at` (bytes), the CSV is cut back to that length (the end of a finished frame) and continued."""

    def __init__(self, out_dir: Path, classes: list[str], resume_at: int | None = None):
        self.out_dir, self.classes = out_dir, classes
        self.columns = COLUMNS + [f"p_{c}" for c in classes] + ["note"]
        self.path = out_dir / "predictions.csv"
        if resume_at is None:
            self.file = open(self.path, "w", newline="")
            csv.writer(self.file).writerow(self.columns)
        else:
            with open(self.path, "r+b") as f:
                f.truncate(resume_at)
            self.file = open(self.path, "a", newline="")
        self.writer = csv.DictWriter(self.file, self.columns)
        self.file.flush()
        self.faces = 0

    def add(
        self,
        source: str,
        faces: list[Face],
        probs: np.ndarray,
        frame: int | None = None,
        time_s=None,
        tracks: list[int | None] | None = None,
        note: str = "",
    ) -> None:
        """The faces of one photo or frame with their probabilities (F, C); none gives one row saying so."""
        base = {"source": source, "frame": frame, "time_s": None if time_s is None else round(time_s, 4)}
        if not faces:
            self._write([base | {"note": note or "no face"}])
            return
        rows = []
        for i, (face, p) in enumerate(zip(faces, probs, strict=True)):
            x1, y1, x2, y2 = (round(float(v), 1) for v in face.box)
            rows.append(
                base
                | {"face": i, "track": tracks[i] if tracks else None, "x1": x1, "y1": y1, "x2": x2, "y2": y2}
                | {"eye_angle": round(face.eye_angle, 2), "det_prob": round(face.prob, 4)}
                | {"label": self.classes[int(p.argmax())], "note": note}
                | {f"p_{c}": round(float(v), 5) for c, v in zip(self.classes, p, strict=True)}
            )
        self.faces += len(rows)
        self._write(rows)

    def _write(self, rows: list[dict]) -> None:
        self.writer.writerows(rows)
        self.file.flush()

    @property
    def written(self) -> int:
        """Bytes of the CSV so far: where a resumed run cuts it back to."""
        return self.file.tell()

    def close(self, extra: dict) -> None:
        """Close the CSV and write its JSON twin (numbers as numbers) with `extra` beside the rows."""
        self.file.close()
        with open(self.path, newline="") as f:
            rows = [{k: _number(v) for k, v in row.items()} for row in csv.DictReader(f)]
        write_json(self.out_dir / "predictions.json", {**extra, "classes": self.classes, "rows": rows})


def _number(text: str):
    """A CSV cell as JSON would have it: '' is None, '3' is 3, '0.5' is 0.5, other text stays."""
    if text == "":
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    return text


def read_frames(path: Path, classes: list[str], upto: int) -> dict[int, list[tuple[Face, np.ndarray, int | None]]]:
    """The faces of each frame before `upto` in a CSV predict wrote: (face, probabilities, track), to redraw them."""
    frames: dict[int, list] = {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            frame = int(row["frame"])
            if frame >= upto or not row["label"]:
                continue
            box = np.array([float(row[k]) for k in ("x1", "y1", "x2", "y2")])
            probs = np.array([float(row[f"p_{c}"]) for c in classes])
            face = Face(box, np.zeros((5, 2)), float(row["det_prob"]))
            frames.setdefault(frame, []).append((face, probs, int(row["track"]) if row["track"] else None))
    return frames


def annotate(
    img: Image.Image, faces: list[Face], probs: np.ndarray, classes: list[str], tracks=None, copy: bool = True
) -> Image.Image:
    """The picture (a copy, or itself with copy=False) with each face's box and its label and probability; a label
    that would cover another moves below its box, then further down, until it is free."""
    out = img.copy() if copy else img
    draw = ImageDraw.Draw(out)
    width = max(2, round(min(img.size) / 200))
    font = _font(max(11, round(min(img.size) / 60)))
    taken: list[tuple[float, float, float, float]] = []
    for i, (face, p) in enumerate(zip(faces, probs, strict=True)):
        x1, y1, x2, y2 = (float(v) for v in face.box)
        k = int(p.argmax())
        track = tracks[i] if tracks else None
        text = f"{classes[k]} {p[k]:.2f}" + (f"  #{track}" if track is not None else "")
        draw.rectangle([x1, y1, x2, y2], outline=BOX_COLOUR, width=width)
        left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
        label = _free_place((right - left + 6, bottom - top + 4), (x1, y1, x2, y2), img.size, taken)
        taken.append(label)
        draw.rectangle(label, fill=BOX_COLOUR)
        draw.text((label[0] + 3 - left, label[1] + 2 - top), text, fill=TEXT_COLOUR, font=font)
    return out


@functools.cache
def _font(size: int) -> ImageFont.ImageFont:
    """Pillow's built-in font at `size` px, readable on a 1080p frame as on a photo."""
    return ImageFont.load_default(size)


def _free_place(size: tuple[float, float], box: tuple, picture: tuple[int, int], taken: list) -> tuple:
    """A label rectangle of `size` near `box` (above it, else below, else lower still), inside the picture and
    clear of the rectangles `taken`."""
    w, h = size
    x = min(max(0.0, box[0]), max(0.0, picture[0] - w))
    tops = [box[1] - h, box[3]] + [box[3] + h * n for n in range(1, 20)]
    for top in tops:
        top = min(max(0.0, top), max(0.0, picture[1] - h))
        rect = (x, top, x + w, top + h)
        if not any(_overlap(rect, other) for other in taken):
            return rect
    top = max(0.0, tops[0])
    return (x, top, x + w, top + h)


def _overlap(a: tuple, b: tuple) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def summary_json(out_dir: Path, summary: dict) -> None:
    write_json(out_dir / "summary.json", json.loads(json.dumps(summary, default=str)))
