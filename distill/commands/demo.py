"""`distill demo`: the whole pipeline on the real faces that ship with scikit-image, in a few minutes on a CPU.

crop (MTCNN) -> label (the default teacher: mini_xception+face_api where setup fetched face_api, else
mini_xception) -> train a SqueezeNet student with kld -> compress it with BWN -> agreement with the teacher on
held-out faces -> workspace report.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from distill.workspace import Workspace

EXPLAIN = """\
What these numbers mean: the demo trains on {faces} tiny faces (scikit-image's
25 px LFW subset, upscaled) for {epochs} epochs and scores students by how often
they agree with the teacher on {held_out} faces they never trained on. That shows
the pipeline works end to end; it says little about accuracy on real faces.

The real thing (the papers' Table 3; the defaults are the measured recipe, docs/results.md):
  distill crop data/pubfig83
  distill label            # mini_xception+face_api (the strongest offline teacher), or --teacher ...
  distill train --loss kld
  distill compress         # no flags: pruned as far as held-out faces allow, then int8
  distill eval rafd --data data/RaFD --model mini_xception \\
      --model distill-work/runs/<run> --model distill-work/compressed/<run>
  distill report
"""


def run(ws: Workspace, epochs: int = 25, show_progress: bool = True) -> dict:
    from distill.commands import report
    from distill.compress.distill_file import load_compressed
    from distill.compress.pipeline import compress_run
    from distill.config import CompressConfig, LabelConfig, TrainConfig
    from distill.datasets.demo import demo_samples
    from distill.faces.crop import crop
    from distill.faces.store import FaceStore
    from distill.labelling.label import default_cache_path, label, resolved_label
    from distill.students.model import load_student
    from distill.training.train import train

    store = ws.dir("faces") / "skimage-demo.h5"
    crop(Path("skimage-demo"), store, reader="skimage", samples=demo_samples(ws.root), show_progress=show_progress)
    teaching, _ = resolved_label(LabelConfig(), len(FaceStore(store)))  # the defaults, as `distill label` runs them
    cache = default_cache_path(ws.root, store, teaching.teacher, teaching.views)
    label(store, cache, teaching, show_progress=show_progress)
    cfg = TrainConfig(epochs=epochs, batch_size=32, val_fraction=0.2, workers=0)  # a 100-face pool: smaller batches
    run_dir = ws.new_run_dir("run", "demo-squeezenet1_1-kld")
    summary = train([(store, cache)], run_dir, cfg, show_progress=show_progress)
    compressed_dir = ws.new_run_dir("compressed", f"{run_dir.name}-bwn")
    compress_run(run_dir, compressed_dir, CompressConfig("bwn", epochs=max(1, epochs // 5)), show_progress)
    agreement, held_out = held_out_agreement(store, cache, load_student(summary["student"]), cfg.val_fraction)
    bwn_agreement, _ = held_out_agreement(store, cache, load_compressed(compressed_dir), cfg.val_fraction)
    report_path, _ = report.run(ws)
    faces = len(FaceStore(store))
    return {
        "student": summary["student"],
        "bwn_student": str((compressed_dir / "model.distill").resolve()),
        "held_out_faces": held_out,
        "agreement_with_teacher": agreement,
        "bwn_agreement_with_teacher": bwn_agreement,
        "report": str(report_path),
        "explain": EXPLAIN.format(faces=faces, epochs=epochs, held_out=held_out),
    }


def held_out_agreement(store_path: Path, cache_path: Path, model, fraction: float) -> tuple[float, int]:
    """Share of the validation faces (never trained on) where the model's argmax is the teacher's."""
    from distill.evaluate.scores import predict
    from distill.faces.store import FaceStore
    from distill.labelling.cache import PosteriorCache
    from distill.training.data import held_out

    store, cache = FaceStore(store_path), PosteriorCache(cache_path)
    rows = np.flatnonzero(held_out(store.keys, fraction))
    logits = predict(model, store.pixels(rows))
    return float((logits.argmax(1) == cache.logits[rows].argmax(1)).mean()), len(rows)
