"""The student at work, in one run: `distill predict` on a video made of real faces (student vs teacher frames/s,
the share of the time spent detecting, what --detect-every buys), and the runtimes of the student side by side
(eager PyTorch, ONNX Runtime float, ONNX Runtime int8 calibrated on the unlabelled pool) with their agreement and
accuracy on held-out labelled faces and their bytes on disk.
Usage: python benchmarks/bench_predict.py STUDENT --pool STORE [--eval-store STORE --data DIR] [--teacher SPEC]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch
from PIL import Image

from distill.config import PredictConfig
from distill.evaluate.speed import compare_latency_on
from distill.export import OnnxModel, export_model
from distill.faces.store import FaceStore
from distill.predict.run import predict_in
from distill.predict.video import VideoWriter
from distill.progress import quiet_libraries
from distill.students.model import load_student
from distill.workspace import Workspace

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def make_video(path: Path, photos: list[Path], frames: int = 60) -> Path:
    """Two real face photos sliding across a 640x360 background at 10 fps (written by predict's own writer)."""
    faces = [Image.open(p).convert("RGB").resize((180, 180)) for p in photos[:2]]
    writer = VideoWriter(path, 10, (640, 360))
    for i in range(frames):
        canvas = Image.new("RGB", (640, 360), (40, 90, 60))
        canvas.paste(faces[0], (20 + 3 * i, 60))
        canvas.paste(faces[1], (420 - 2 * i, 120))
        writer.write(canvas)
    writer.close()
    return path


def runtimes(student_path: Path, pool: Path, tmp: Path) -> tuple[dict, dict]:
    """Models by runtime and their bytes on disk."""
    student = load_student(student_path)
    calibration = FaceStore(pool).pixels(slice(0, 512))
    export_model(student, tmp / "s.onnx", "onnx", 112)
    export_model(student, tmp / "s.int8.onnx", "onnx", 112, calibration=calibration)
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
    ap.add_argument("student", type=Path, help="a student.pt")
    ap.add_argument("--pool", type=Path, required=True, help="the unlabelled pool's face store (int8 calibration)")
    ap.add_argument("--eval-store", type=Path, help="MTCNN crops of --data (distill eval makes them)")
    ap.add_argument("--data", type=Path, default=SHARED / "expressions-dev")
    ap.add_argument("--teacher", default="mini_xception")
    args = ap.parse_args(argv)
    quiet_libraries()
    torch.set_num_threads(1)  # one core for the runtimes, like a phone's or a busy laptop's
    rows = []
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        photos = sorted((args.data / "images").glob("*.jpg"))[:2]
        video = make_video(tmp / "faces.mp4", photos)
        runs = {}
        for who, every in (("student", 1), ("teacher", 1), ("student", 5)):
            model = str(args.student) if who == "student" else args.teacher
            cfg = PredictConfig(detect_every=every, annotate=False)
            runs[(who, every)] = predict_in(Workspace(tmp / "w"), video, None, model, tmp / f"p-{who}-{every}", cfg)
        s, t, e = runs[("student", 1)], runs[("teacher", 1)], runs[("student", 5)]
        print(
            f"predict on {s['frames']} frames: student {s['frames_per_s']} frames/s ({s['runtime']}), teacher "
            f"{t['frames_per_s']} ({t['runtime']}); detection {s['detection_share']:.0%} of the student's time; "
            f"--detect-every 5: {e['frames_per_s']} frames/s"
        )
        models, sizes = runtimes(args.student, args.pool, tmp)
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
    rows.append(
        {
            "bench": "predict frames/s: student vs teacher",
            "ours": s["frames_per_s"],
            "bare": t["frames_per_s"],
            "unit": "frames/s",
        }
    )
    for row in rows:
        row["ratio"] = row["ours"] / row["bare"]
    return rows


if __name__ == "__main__":
    main()
