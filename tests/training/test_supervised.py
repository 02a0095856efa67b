"""fit-teacher's training: interrupted and resumed where it stood."""

from __future__ import annotations

import csv
from dataclasses import replace

import numpy as np
import pytest
import torch
from PIL import Image

from distill.config import CropConfig, FitConfig
from distill.datasets.emotions import canonical
from distill.errors import Interrupted
from distill.faces.crop import crop
from distill.faces.store import FaceStore
from distill.training.supervised import SupervisedModule, fit_teacher, resume_fit


@pytest.fixture
def labelled_store(tmp_path, face_store):
    """24 FER2013-like 48 px grey faces with two labels, each image stored whole."""
    folder = tmp_path / "labelled"
    (folder / "images").mkdir(parents=True)
    faces, rows = FaceStore(face_store), ["image,emotion"]
    for i in range(24):
        Image.fromarray(faces.pixels(i % len(faces))).resize((48, 48)).convert("L").save(folder / "images" / f"{i}.jpg")
        rows.append(f"{i}.jpg,{('happy', 'sad')[i % 2]}")
    (folder / "labels.csv").write_text("\n".join(rows) + "\n")
    store = tmp_path / "labelled.h5"
    crop(folder, store, CropConfig(detector="whole"), show_progress=False)
    return store


def test_an_interrupted_fit_resumes_where_it_stood(tmp_path, labelled_store, monkeypatch):
    real, stopped = SupervisedModule.training_step, []

    def step(self, batch, index):
        if self.global_step == 2 and not stopped:
            stopped.append(True)
            raise KeyboardInterrupt  # what Ctrl-C raises mid-epoch
        return real(self, batch, index)

    monkeypatch.setattr(SupervisedModule, "training_step", step)
    cfg = FitConfig(width=0.05, size=32, epochs=2, batch_size=2, workers=0, test_fraction=0.2, val_fraction=0.2)
    out = tmp_path / "teacher"
    out.mkdir()
    with pytest.raises(Interrupted, match="continue with: distill fit-teacher --resume .*last.ckpt"):
        fit_teacher(labelled_store, out, cfg, show_progress=False)
    last = out / "checkpoints" / "last.ckpt"
    assert torch.load(last, weights_only=True)["global_step"] == 2 and not (out / "teacher.pt").exists()

    summary = resume_fit(last, show_progress=False)
    steps_an_epoch = -(-summary["faces"]["train"] // cfg.batch_size)
    assert (out / "teacher.pt").is_file() and 0 <= summary["test"]["test/accuracy"] <= 1
    logged = list(csv.DictReader((out / "logs" / "metrics.csv").open()))
    validated = [(r["epoch"], int(r["step"])) for r in logged if r.get("val/uar")]
    assert validated == [("0", steps_an_epoch), ("1", 2 * steps_an_epoch)]  # the epoch before the stop kept, none twice


def test_a_fitted_teacher_scores_its_held_out_faces_as_the_fit_reported(tmp_path, labelled_store):
    """The saved teacher averages each face with its mirror image, as validation and test did: its accuracy on the
    held-out faces is the fit's reported one (the whole image framed as fit-teacher framed it)."""
    from distill.faces import augment
    from distill.teachers.build import build_teacher

    cfg = FitConfig(width=0.05, size=32, epochs=1, batch_size=4, workers=0, precision="32", test_fraction=0.3)
    summary = fit_teacher(labelled_store, tmp_path / "t", cfg, show_progress=False)
    teacher = build_teacher(summary["spec"])
    store = FaceStore(labelled_store)
    held_out = set((tmp_path / "t" / "test-keys.txt").read_text().split())
    rows = [i for i, key in enumerate(store.keys) if key in held_out]
    pixels = augment.to_float(torch.from_numpy(np.stack([store.pixels(i) for i in rows])))
    truth = torch.tensor([teacher.classes.index(canonical(store.labels[i])) for i in rows])
    with torch.no_grad():
        averaged, one_pass = teacher(pixels), build_teacher(summary["spec"] + "?mirror=0")(pixels)
    accuracy = (averaged.argmax(1) == truth).float().mean().item()
    assert teacher.mirror and summary["mirror"] and summary["faces"]["test"] == len(rows) > 0
    assert not torch.allclose(averaged, one_pass.log_softmax(1))  # the saved teacher really runs a second pass
    assert accuracy == pytest.approx(summary["test"]["test/accuracy"], abs=1e-6)

    one_pass_fit = fit_teacher(labelled_store, tmp_path / "u", replace(cfg, mirror=False), show_progress=False)
    assert not one_pass_fit["mirror"] and not build_teacher(one_pass_fit["spec"]).mirror  # --no-mirror: one pass


@pytest.mark.parametrize(("precision", "side"), [("32", 64), ("bf16-mixed", 96)])
def test_an_unset_size_is_what_this_cpu_computes_fast_and_is_recorded_for_a_resume(
    tmp_path, labelled_store, monkeypatch, precision, side
):
    """96 px where the CPU computes bf16 natively, 64 where a 96 px fit would take twice as long; the chosen side is
    written into config.json, so --resume on another machine keeps it."""
    import json

    from distill.teachers.build import build_teacher
    from distill.training import supervised

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(supervised, "auto_precision", lambda accelerator: precision)
    cfg = FitConfig(width=0.05, epochs=1, batch_size=4, workers=0, precision="32", test_fraction=0.3)
    summary = fit_teacher(labelled_store, tmp_path / "t", cfg, show_progress=False)
    assert json.loads((tmp_path / "t" / "config.json").read_text())["fit"]["size"] == side
    assert build_teacher(summary["spec"]).preprocess.size == side
