"""What predict writes: one CSV row per face (and per photo or frame without one), written as it goes so an
interrupted run keeps its rows, the same rows as JSON at the end, and annotated pictures."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from distill.fileio import write_json
from distill.predict.faces import Face

COLUMNS = ["source", "frame", "time_s", "face", "track", "x1", "y1", "x2", "y2", "eye_angle", "det_prob", "label"]


class Rows:
    """predictions.csv, flushed after every photo or frame, and predictions.json beside it on close()."""

    def __init__(self, out_dir: Path, classes: list[str]):
        self.out_dir, self.classes = out_dir, classes
        self.columns = COLUMNS + [f"p_{c}" for c in classes] + ["note"]
        self.file = open(out_dir / "predictions.csv", "w", newline="")
        self.writer = csv.DictWriter(self.file, self.columns)
        self.writer.writeheader()
        self.rows: list[dict] = []
        self.faces = 0

    def add(
        self,
        source: str,
        faces: list[Face],
        probs: np.ndarray,
        frame: int | None = None,
        time_s=None,
        tracks: list[int] | None = None,
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
        self.rows += rows

    def close(self, extra: dict) -> None:
        self.file.close()
        write_json(self.out_dir / "predictions.json", {**extra, "classes": self.classes, "rows": self.rows})


def annotate(img: Image.Image, faces: list[Face], probs: np.ndarray, classes: list[str], tracks=None) -> Image.Image:
    """A copy of the picture with each face's box and its label and probability."""
    out = img.copy()
    draw = ImageDraw.Draw(out)
    width = max(2, round(min(img.size) / 200))
    for i, (face, p) in enumerate(zip(faces, probs, strict=True)):
        x1, y1, x2, y2 = (float(v) for v in face.box)
        k = int(p.argmax())
        text = f"{classes[k]} {p[k]:.2f}" + (f"  #{tracks[i]}" if tracks else "")
        draw.rectangle([x1, y1, x2, y2], outline=(255, 210, 0), width=width)
        left, top, right, bottom = draw.textbbox((x1, y1), text)
        y = max(0, y1 - (bottom - top) - 4)
        draw.rectangle([x1, y, x1 + right - left + 6, y + bottom - top + 4], fill=(255, 210, 0))
        draw.text((x1 + 3, y + 1), text, fill=(0, 0, 0))
    return out


def summary_json(out_dir: Path, summary: dict) -> None:
    write_json(out_dir / "summary.json", json.loads(json.dumps(summary, default=str)))
