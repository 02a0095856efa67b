"""`distill predict SRC`: find the faces of photos, a folder of them, a video or a camera, classify each with the
student (ONNX Runtime by default), and write predictions.csv/.json, annotated copies and a summary."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from distill.config import PredictConfig
from distill.datasets.readers import list_images
from distill.errors import DistillError
from distill.faces.images import BadImage, load_rgb
from distill.predict.faces import FaceFinder
from distill.predict.model import Classifier
from distill.predict.outputs import Rows, annotate
from distill.progress import progress_bar

DETECTORS = 2  # detectors working on two frames at once: detection is the frame loop's one busy stage


def predict_photos(src: Path, finder: FaceFinder, clf: Classifier, cfg: PredictConfig, out_dir: Path) -> dict:
    paths = [src] if src.is_file() else list_images(src)
    if not paths:
        raise DistillError(f"no photos in {src}")
    rows, start, counts = Rows(out_dir, clf.classes), time.perf_counter(), {"no_face": 0, "unreadable": 0}
    with progress_bar("predict", len(paths)) as advance:
        for path in paths:
            name = path.name if src.is_file() else path.relative_to(src).as_posix()
            try:
                img, _ = load_rgb(path)
            except BadImage as err:
                rows.add(name, [], np.zeros((0, 0)), note=str(err))
                counts["unreadable"] += 1
                advance()
                continue
            faces = finder.find(img)
            probs = clf.probs(np.stack([f.pixels for f in faces])) if faces else np.zeros((0, len(clf.classes)))
            rows.add(name, faces, probs)
            counts["no_face"] += not faces
            if cfg.annotate and faces:
                target = out_dir / "annotated" / Path(name).with_suffix(".jpg")
                target.parent.mkdir(parents=True, exist_ok=True)
                annotate(img, faces, probs, clf.classes).save(target, quality=90)
            advance()
    seconds = time.perf_counter() - start
    rows.close({"source": str(src.resolve())})
    return {
        "photos": len(paths),
        "faces": rows.faces,
        "photos_without_face": counts["no_face"],
        "unreadable": counts["unreadable"],
        "photos_per_s": round(len(paths) / seconds, 2),
        "csv": str((out_dir / "predictions.csv").resolve()),
    }
