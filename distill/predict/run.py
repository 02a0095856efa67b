"""`distill predict SRC`: find the faces of photos, a folder of them, a video or a camera, classify each with the
student (ONNX Runtime by default), and write predictions.csv/.json, annotated copies and a summary."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

import numpy as np

from distill.config import PredictConfig
from distill.datasets.readers import IMAGE_SUFFIXES, list_images
from distill.errors import DistillError
from distill.faces.images import BadImage, load_rgb
from distill.predict.faces import FaceFinder
from distill.predict.model import Classifier, load_classifier
from distill.predict.outputs import Rows, annotate, summary_json
from distill.predict.tracks import Tracker
from distill.predict.video import VIDEO_SUFFIXES, VideoWriter, frames, open_video
from distill.progress import progress_bar


def predict_in(ws, src: Path | None, camera: int | None, model: str | None, out: Path | None, cfg: PredictConfig):
    """Check the source and the model, then predict into `out` (default: a new folder under predictions/)."""
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
    spec = model or str(ws.newest_model())
    video = open_video(src if src is not None else camera) if kind != "photos" else None  # refused before any folder
    name = f"camera{camera}" if src is None else src.stem or src.name
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    with ws.new_run("predictions", name) if out is None else contextlib.nullcontext(out) as out_dir:
        clf = load_classifier(spec, cfg.runtime, out_dir)
        finder = FaceFinder(cfg)
        if video is None:
            summary = predict_photos(src, finder, clf, cfg, out_dir)
        else:
            summary = predict_video(
                video, src.name if src is not None else f"camera {camera}", finder, clf, cfg, out_dir
            )
        summary = {"model": clf.name, "runtime": clf.runtime, **summary, "output": str(out_dir.resolve())}
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


def predict_video(video: tuple, label: str, finder: FaceFinder, clf: Classifier, cfg: PredictConfig, out_dir: Path):
    """Every frame of an open_video() (up to --max-frames): faces detected every --detect-every frames and carried
    in between, each face classified, its track's probabilities smoothed; an annotated video at the same rate."""
    container, stream, fps, total = video
    rows, tracker = Rows(out_dir, clf.classes), Tracker(cfg.smooth)
    writer, carried, tracks, clock = None, [], [], {"detect": 0.0, "classify": 0.0}
    limit = min(total, cfg.max_frames) if total and cfg.max_frames else (cfg.max_frames or total or None)
    start, done, error = time.perf_counter(), 0, None
    try:
        with progress_bar(f"predict {label}", limit) as advance:
            for index, img in frames(container, stream):
                if cfg.max_frames and index >= cfg.max_frames:
                    break
                t0 = time.perf_counter()
                if index % cfg.detect_every == 0:
                    carried = finder.find(img)
                    tracks = tracker.match([f.box for f in carried], index)
                else:  # the last detections' boxes (and tracks), cut again from this frame
                    carried = [finder.cut(img, f) for f in carried]
                t1 = time.perf_counter()
                probs = _smoothed(clf, tracker, carried, tracks, index)
                clock["detect"] += t1 - t0
                clock["classify"] += time.perf_counter() - t1
                ids = [t.id for t in tracks]
                rows.add(str(label), carried, probs, frame=index, time_s=index / fps, tracks=ids)
                if cfg.annotate:
                    writer = writer or VideoWriter(out_dir / "annotated.mp4", fps, img.size)
                    writer.write(annotate(img, carried, probs, clf.classes, ids) if carried else img)
                done += 1
                advance()
    except DistillError as err:  # a damaged file: what was read is kept
        error = str(err)
    finally:
        container.close()
        if writer is not None:
            writer.close()
    if done == 0:
        raise DistillError(error or f"{label}: no video frame could be decoded")
    seconds = time.perf_counter() - start
    track_rows = tracker.summary(fps)
    rows.close({"source": label, "fps": fps, "tracks": track_rows})
    busy = clock["detect"] + clock["classify"]
    summary = {
        "frames": done,
        "faces": rows.faces,
        "tracks": len(track_rows),
        "frames_per_s": round(done / seconds, 2),
        "detection_share": round(clock["detect"] / busy, 3) if busy else None,
        "csv": str((out_dir / "predictions.csv").resolve()),
        "video": str((out_dir / "annotated.mp4").resolve()) if writer is not None else None,
    }
    return summary | ({"stopped": error} if error else {})


def _smoothed(clf: Classifier, tracker: Tracker, faces: list, tracks: list, frame: int) -> np.ndarray:
    """Each face's probabilities (F, C), averaged over its track's frames (Tracker.observe)."""
    if not faces:
        return np.zeros((0, len(clf.classes)))
    now = clf.probs(np.stack([f.pixels for f in faces]))
    return np.stack([tracker.observe(t, p, frame, clf.classes) for t, p in zip(tracks, now, strict=True)])
