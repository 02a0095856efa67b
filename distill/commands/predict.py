"""`distill predict`: a photo, folder, video or camera through the newest model of the workspace (or the one
given), into a new folder of predictions/ or the folder of a stopped run it goes on with."""

from __future__ import annotations

import contextlib
from dataclasses import asdict
from pathlib import Path

from distill.artifacts import model_file
from distill.config import PredictConfig
from distill.datasets.readers import IMAGE_SUFFIXES
from distill.errors import DistillError
from distill.faces.detectors import recommended_min_prob
from distill.predict.faces import FaceFinder
from distill.predict.model import load_classifier, torch_threads
from distill.predict.outputs import summary_json
from distill.predict.run import DETECTORS, predict_photos
from distill.predict.stream import VideoJob, predict_video, stopped_run
from distill.predict.video import VIDEO_SUFFIXES, open_video
from distill.workspace import Workspace


def run(
    ws: Workspace, src: Path | None, camera: int | None, model: str | None, out: Path | None, cfg: PredictConfig
) -> dict:
    """Check the source and the model, then predict into `out` (default: a new folder under predictions/, or the
    folder of a stopped run of the same video, model and settings, which goes on after its last finished frame)."""
    recommended_min_prob(cfg.detector)  # an unknown detector is refused before any work
    if src is not None and camera is not None:
        raise DistillError(f"{src} and --camera {camera}: give one source, the file or folder or the camera")
    if src is None and camera is None:
        raise DistillError("give a photo, a folder of photos or a video, or --camera N")
    if out is not None and out.exists() and not out.is_dir():
        raise DistillError(f"--out {out} is a file: give a folder (made if missing) for the predictions")
    if src is not None and not src.exists():
        raise DistillError(f"{src}: no such file or folder")
    kind = "camera" if src is None else "video" if src.suffix.lower() in VIDEO_SUFFIXES else "photos"
    if kind == "photos" and src.is_file() and src.suffix.lower() not in IMAGE_SUFFIXES:
        raise DistillError(
            f"{src} is neither a photo ({', '.join(sorted(IMAGE_SUFFIXES))}) nor a video "
            f"({', '.join(sorted(VIDEO_SUFFIXES))})"
        )
    if model is None:
        spec = str(ws.newest_model())
    else:
        spec = str(Path(model).resolve()) if model_file(model) else ws.pin_fitted(model)
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
