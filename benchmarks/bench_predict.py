"""The student at work, in one run, on a real video: `distill predict` frames/s per stage and as a ratio to the video's
own frame rate, with today's default detector and with the MTCNN path, at 1080p and at a 640x360 downscale; the
detector's recall against MTCNN on the unlabelled pool's photos and on the labelled set's; optionally the student's
runtimes side by side (eager, ONNX float, ONNX int8) with --pool.

Usage: python benchmarks/bench_predict.py [--student S] [--video V] [--photos N] [--pool STORE [--eval-store STORE]]
Without --student, an untrained SqueezeNet-BN at the default student's input (RGB 112 px): speed does not depend on
what a student learnt. OMP_NUM_THREADS=2 (predict uses both cores); each predict runs in its own process.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from distill.evaluate.speed import compare_latency_on
from distill.export.formats import OnnxModel, export_model
from distill.faces.detectors import box_iou, make_detector, recommended_min_prob
from distill.faces.store import FaceStore
from distill.predict.video import VideoWriter, frames, open_video
from distill.progress import quiet_libraries
from distill.students.model import Student, load_student

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
CLASSES = ["anger", "disgust", "fear", "happiness", "sadness", "surprise", "neutral"]


def downscale(video: Path, out: Path, size: tuple[int, int]) -> Path:
    """`video` at `size`, the same frames and rate (predict's own writer)."""
    container, stream, fps, _ = open_video(video)
    writer = VideoWriter(out, fps, size)
    for _, img, _ in frames(container, stream):
        writer.write(img.resize(size, Image.BILINEAR))
    writer.close()
    container.close()
    return out


def run_predict(video: Path, student: Path, out: Path, detector: str | None, code: Path | None = None) -> dict:
    """`distill predict VIDEO` as a user runs it (its own process), with the detector named (None: the code's only
    one), from this checkout or from the package at `code` (an older checkout); its summary."""
    cmd = [sys.executable, "-m", "distill.cli", "--workdir", str(out.parent / "w"), "predict", str(video)]
    cmd += ["--model", str(student), "--out", str(out)] + (["--detector", detector] if detector else [])
    env = {**os.environ, "PYTHONPATH": str(code)} if code else None
    subprocess.run(cmd, check=True, capture_output=True, text=True, env=env, cwd=code)
    return json.loads((out / "summary.json").read_text())


def stage_ms(summary: dict) -> dict:
    """ms a frame per stage: the frame loop's (its wall time) and the other threads' (their own busy time)."""
    if "frame_loop_ms_a_frame" not in summary:  # an older predict: one thread, detection's share only
        per_frame = 1000 / summary["frames_per_s"]
        return {"detection (its share of detection + classification)": summary["detection_share"] * per_frame}
    workers = {f"{k} (two workers, summed)": v for k, v in summary["workers_ms_a_frame"].items()}
    threads = {f"{k} (own thread)": v for k, v in summary["other_threads_ms_a_frame"].items()}
    return {f"frame loop: {k}": v for k, v in summary["frame_loop_ms_a_frame"].items()} | workers | threads


def video_rows(video: Path, student: Path, tmp: Path, baseline: Path | None) -> list[dict]:
    """Both detectors on the video and its 640x360 downscale, and the older checkout's predict if given: frames/s,
    the ratio to the video's rate, ms a frame per stage."""
    small = downscale(video, tmp / "video-640x360.mp4", (640, 360))
    rows, fps = [], open_video(video)[2]
    for name, path in (("640x360", small), ("1080p", video)):
        runs = {d: run_predict(path, student, tmp / f"{name}-{d}", d) for d in ("blazeface", "mtcnn")}
        if baseline:
            runs["the code before (MTCNN)"] = run_predict(path, student, tmp / f"{name}-before", None, baseline)
        for detector, s in runs.items():
            flips = s.get("label_flips_per_track_second", "not reported")
            print(
                f"{name} {detector}: {s['frames_per_s']} frames/s; {s['faces']} faces, {s['tracks']} tracks, "
                f"{s.get('scene_cuts', 'no count of')} scene cuts, label flips per track-second: {flips}"
            )
            for stage, ms in stage_ms(s).items():
                print(f"    {stage}: {ms:.1f} ms a frame")
        new = runs["blazeface"]["frames_per_s"]
        rows.append({"bench": f"predict {name}: frames/s vs the video's", "ours": new, "bare": fps, "unit": "frames/s"})
        for other in list(runs)[1:]:
            row = {"bench": f"predict {name}: blazeface vs {other}", "ours": new, "bare": runs[other]["frames_per_s"]}
            rows.append(row | {"unit": "frames/s"})
    return rows


def recall(photos: list[Path], name: str) -> dict:
    """Of the faces MTCNN finds (score >= 0.9) in `photos`, the share BlazeFace finds (IoU >= 0.3 at its
    threshold); also at other thresholds, and each detector's time a photo."""
    mtcnn, blaze = make_detector("mtcnn", 20), make_detector("blazeface", 20)
    hits, faces, best, seconds = {t: 0 for t in (0.5, 0.6, 0.7)}, 0, [], {"mtcnn": 0.0, "blazeface": 0.0}
    threshold, extra = recommended_min_prob("blazeface"), 0  # extra: BlazeFace's faces MTCNN has none at
    for path in photos:
        img = Image.open(path).convert("RGB")
        t0 = time.perf_counter()
        reference = mtcnn.detect([img])[0]
        t1 = time.perf_counter()
        found = blaze.detect([img])[0]
        seconds["mtcnn"] += t1 - t0
        seconds["blazeface"] += time.perf_counter() - t1
        ref_boxes = np.zeros((0, 4)) if reference is None else reference.boxes[reference.probs >= 0.9]
        for box in [] if found is None else found.boxes[found.probs >= threshold]:
            extra += not (box_iou(box, ref_boxes) >= 0.3).any()
        for box in ref_boxes:
            faces += 1
            overlap = box_iou(box, found.boxes) if found is not None else np.zeros(0)
            score = float(found.probs[overlap >= 0.3].max()) if (overlap >= 0.3).any() else 0.0
            best.append(score)
            for t in hits:
                hits[t] += score >= t
    kept = sum(s >= threshold for s in best)
    print(
        f"{name}: BlazeFace finds {kept} of MTCNN's {faces} faces ({kept / max(faces, 1):.2%}) at score {threshold}; "
        + ", ".join(f"{h / max(faces, 1):.2%} at {t}" for t, h in hits.items())
        + f"; {extra} of its faces at {threshold} are none of MTCNN's; ms a photo: "
        + ", ".join(f"{k} {1000 * v / len(photos):.1f}" for k, v in seconds.items())
    )
    return {"bench": f"BlazeFace recall of MTCNN's faces, {name}", "ours": kept, "bare": faces, "unit": "faces"}


def runtimes(student_path: Path, pool: Path, tmp: Path) -> tuple[dict, dict]:
    """Models by runtime and their bytes on disk."""
    student = load_student(student_path)
    calibration = FaceStore(pool).pixels(slice(0, 512))
    export_model(student, tmp / "s.onnx", "onnx")
    export_model(student, tmp / "s.int8.onnx", "onnx", calibration=calibration)
    models = {
        "eager float": student,
        "ONNX float": OnnxModel(tmp / "s.onnx", threads=1),
        "ONNX int8": OnnxModel(tmp / "s.int8.onnx", threads=1),
    }
    sizes = {
        "eager float": student_path.stat().st_size,
        "ONNX float": (tmp / "s.onnx").stat().st_size,
        "ONNX int8": (tmp / "s.int8.onnx").stat().st_size,
    }
    return models, sizes


def held_out(models: dict, eval_store: Path, data: Path) -> dict:
    """Accuracy of each runtime and its agreement with eager float on the labelled faces."""
    from distill.datasets.readers import read_csv_labels
    from distill.evaluate.evalset import load_cropped
    from distill.evaluate.scores import predict, score

    evalset = load_cropped(read_csv_labels(data), eval_store, 112)
    out, reference = {}, None
    for name, model in models.items():
        logits = predict(model, evalset.pixels)
        reference = logits.argmax(1) if reference is None else reference
        result = score(logits, evalset.labels, list(model.classes))
        out[name] = {"accuracy": result["accuracy"], "agreement": float((logits.argmax(1) == reference).mean())}
    return out


def main(argv: list[str] | None = None) -> list[dict]:
    ap = argparse.ArgumentParser()
    ap.add_argument("--student", type=Path, help="a student.pt (default: an untrained SqueezeNet-BN, RGB 112 px)")
    ap.add_argument("--video", type=Path, default=SHARED / "videos" / "people-1080p.mp4")
    ap.add_argument("--baseline", type=Path, help="an older checkout's root: its predict, side by side")
    ap.add_argument("--photos", type=int, default=4000, help="pool photos for the recall (0: skip the recall)")
    ap.add_argument("--pool", type=Path, help="the unlabelled pool's face store: also compare the runtimes")
    ap.add_argument("--eval-store", type=Path, help="with --pool: crops of --data (distill eval makes them)")
    ap.add_argument("--data", type=Path, default=SHARED / "expressions-dev")
    args = ap.parse_args(argv)
    quiet_libraries()
    print(f"CPU: {platform.processor() or platform.machine()}, {_cpu_name()}")
    rows = []
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        student = args.student or _untrained(tmp / "student.pt")
        if args.video.exists():
            rows += video_rows(args.video, student, tmp, args.baseline)
        if args.photos:
            pool = sorted((SHARED / "faces-unlabeled" / "images").glob("*.jpg"))[: args.photos]
            rows.append(recall(pool, f"{len(pool)} faces-unlabeled photos"))
            rows.append(recall(sorted((args.data / "images").glob("*.jpg")), args.data.name))
        if args.pool:
            rows += runtime_rows(student, args, tmp)
    for row in rows:
        row["ratio"] = row["ours"] / row["bare"]
        print(f"| {row['bench']} | {row['ours']:.2f} | {row['bare']:.2f} {row['unit']} | {row['ratio']:.3f} |")
    return rows


def _untrained(path: Path) -> Path:
    Student("squeezenet1_1_bn", CLASSES, 112).save(path)
    return path


def _cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []:
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown CPU"


def runtime_rows(student_path: Path, args, tmp: Path) -> list[dict]:
    """The student's runtimes side by side at batch 1 and 64, bytes on disk, and (with --eval-store) accuracy."""
    torch.set_num_threads(1)  # one core for the runtimes, like a phone's or a busy laptop's
    models, sizes = runtimes(student_path, args.pool, tmp)
    rows = []
    for batch in (1, 64):
        x = torch.rand(batch, 3, 112, 112)
        ms = compare_latency_on(models, x, rounds=5, per_round=20 if batch == 1 else 3)
        print(f"batch {batch}: " + ", ".join(f"{k} {v:.2f} ms" for k, v in ms.items()))
        rows += [
            {"bench": f"student b{batch}: {k} vs eager float", "ours": v, "bare": ms["eager float"], "unit": "ms"}
            for k, v in ms.items()
            if k != "eager float"
        ]
    print("bytes on disk: " + ", ".join(f"{k} {v:,}" for k, v in sizes.items()))
    if args.eval_store:
        for name_, r in held_out(models, args.eval_store, args.data).items():
            print(f"{name_}: accuracy {100 * r['accuracy']:.2f}%, agreement with eager float {r['agreement']:.2%}")
    return rows


if __name__ == "__main__":
    main()
