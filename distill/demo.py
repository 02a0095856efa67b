"""`distill demo`: the whole pipeline on the real faces that ship with scikit-image, in a few minutes on a CPU.

crop (MTCNN) -> label (mini_xception, 8 augmented views per face: a larger transfer set) -> train a SqueezeNet
student with kld -> agreement with the teacher on held-out faces -> workspace report.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from distill.workspace import Workspace

EXPLAIN = """\
What these numbers mean: the demo trains on {faces} tiny faces (scikit-image's 25 px LFW subset, upscaled)
for {epochs} epochs, and scores the student by how often it agrees with the teacher on {held_out} faces it never
trained on. That shows the pipeline works end to end; it says little about accuracy on real expressions.

The real thing (the papers' Table 3), with your own photos and a labelled test set:
  distill crop data/pubfig83                      # unlabelled faces, one folder per person
  distill label --teacher mini_xception --views 8 # or vgg_s (after fit-teacher), or an ensemble a+b
  distill train --loss kld --student squeezenet1_1 --grey --small-input --online-teacher --mixup 0.4 --epochs 30
  distill eval rafd --data data/RaFD --model mini_xception --model distill-work/runs/<run>
  distill report
"""


def run_demo(ws: Workspace, epochs: int = 25, show_progress: bool = True) -> dict:
    from distill.demo_data import demo_samples
    from distill.evaluate.report import write_report
    from distill.faces.crop import crop
    from distill.faces.store import FaceStore
    from distill.label import LabelConfig, default_cache_path, label
    from distill.training.train import TrainConfig, train

    store = ws.dir("faces") / "skimage-demo.h5"
    crop(Path("skimage-demo"), store, reader="skimage", samples=demo_samples(ws.root), show_progress=show_progress)
    cache = default_cache_path(ws.root, store, "mini_xception", 8)
    label(store, cache, LabelConfig(teacher="mini_xception", views=8), show_progress=show_progress)
    cfg = TrainConfig(loss="kld", epochs=epochs, batch_size=32, size=64, grey=True, val_fraction=0.2, workers=0)
    run_dir = ws.new_run_dir("run", "demo-squeezenet1_1-kld")
    summary = train([(store, cache)], run_dir, cfg, show_progress=show_progress)
    agreement, held_out = held_out_agreement(store, cache, run_dir / "student.pt", cfg.val_fraction)
    report, _ = write_report(ws)
    faces = len(FaceStore(store))
    return {
        "student": summary["student"],
        "held_out_faces": held_out,
        "agreement_with_teacher": agreement,
        "report": str(report),
        "explain": EXPLAIN.format(faces=faces, epochs=epochs, held_out=held_out),
    }


def held_out_agreement(store_path: Path, cache_path: Path, student_path: Path, fraction: float) -> tuple[float, int]:
    """Share of the validation faces (never trained on) where the student's argmax is the teacher's."""
    from distill.cache import PosteriorCache
    from distill.evaluate.evaluate import predict
    from distill.faces.store import FaceStore
    from distill.students.model import load_student
    from distill.training.data import held_out

    store, cache = FaceStore(store_path), PosteriorCache(cache_path)
    rows = np.flatnonzero(held_out(store.keys, fraction))
    logits = predict(load_student(student_path), store.pixels(rows))
    return float((logits.argmax(1) == cache.logits[rows].argmax(1)).mean()), len(rows)
