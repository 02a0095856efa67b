"""`distill predict SRC`: find the faces of photos, a folder of them, a video or a camera, classify each with the
student (ONNX Runtime by default), and write predictions.csv/.json, annotated copies and a summary."""

from __future__ import annotations

import contextlib
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from distill.config import PredictConfig
from distill.datasets.readers import IMAGE_SUFFIXES, list_images
from distill.errors import DistillError
from distill.faces.images import BadImage, load_rgb
from distill.predict.faces import FaceFinder
from distill.predict.model import Classifier, load_classifier, torch_threads
from distill.predict.outputs import Rows, annotate, summary_json
from distill.predict.stream import VideoJob, predict_video, stopped_run
from distill.predict.video import VIDEO_SUFFIXES, open_video
from distill.progress import progress_bar

DETECTORS = 2  # detectors working on two frames at once: detection is the frame loop's one busy stage


def predict_in(ws, src: Path | None, camera: int | None, model: str | None, out: Path | None, cfg: PredictConfig):
    """Check the source and the model, then predict into `out` (default: a new folder under predictions/, or the
    folder of a stopped run of the same video, model and settings, which goes on after its last finished frame)."""
    from distill.faces.detectors import recommended_min_prob

    recommended_min_prob(cfg.detector)  # an unknown detector is refused before any work
    if (src is None) == (camera is None):
        raise DistillError("give a photo, a folder of photos or a video, or --camera N")
    if src is not None and not src.exists():
        raise DistillError(f"{src}: no such file or folder")
    kind = "camera" if src is None else "video" if src.suffix.lower() in VIDEO_SUFFIXES else "photos"
    if kind == "photos" and src.is_file() and src.suffix.lower() not in IMAGE_SUFFIXES:
        raise DistillError(
            f"{src} is neither a photo ({', '.join(sorted(IMAGE_SUFFIXES))}) nor a video "
            f"({', '.join(sorted(VIDEO_SUFFIXES))})"
        )
    spec = str(Path(model).resolve()) if model and Path(model).exists() else model or str(ws.newest_model())
    video = open_video(src if src is not None else camera) if kind != "photos" else None  # refused before any folder
    name = f"camera{camera}" if src is None else src.stem or src.name
    job = VideoJob(str(src.resolve()) if src is not None else f"camera {camera}", spec, asdict(cfg))
    if kind == "video":
        out = out or stopped_run(ws.dir("predictions"), name, job)
    if out is not None:
        out = out.resolve()  # every path the summary prints is a full one
        out.mkdir(parents=True, exist_ok=True)
    with (
        ws.new_run("predictions", name) if out is None else contextlib.nullcontext(out) as out_dir,
        torch_threads(1),  # faces' pre-processing is tiny: PyTorch's spinning threads would slow the detector
    ):
        clf = load_classifier(spec, cfg.runtime, out_dir)
        if video is None:
            summary = predict_photos(src, FaceFinder(cfg, threads=DETECTORS), clf, cfg, out_dir)
        else:
            label = src.name if src is not None else f"camera {camera}"
            finders = [FaceFinder(cfg) for _ in range(DETECTORS)]
            summary = predict_video(video, label, finders, clf, cfg, out_dir, job)
        summary = {"model": clf.name, "runtime": clf.runtime, "detector": cfg.detector, **summary}
        summary["output"] = str(out_dir.resolve())
        summary_json(out_dir, summary)
        return summary | ({"notes": "; ".join(clf.notes)} if clf.notes else {})


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
