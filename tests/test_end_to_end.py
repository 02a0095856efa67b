"""crop -> label -> train (1 epoch) -> eval through the real CLI, on real faces the test writes."""

import csv
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from PIL import Image

from distill.faces.store import FaceStore
from distill.students.model import load_student


def _cli(*args, cwd):
    done = subprocess.run([sys.executable, "-m", "distill.cli", *args], capture_output=True, text=True, cwd=cwd)
    assert done.returncode == 0, done.stderr[-2000:]
    return done


def _labelled_folder(root, photos, n: int, classes=("happy", "neutral")):
    """A csv-layout labelled set (images/ + labels.csv) from the test photos."""
    (root / "images").mkdir(parents=True)
    rows = ["image,emotion"]
    for i, p in enumerate(sorted(photos.glob("*.jpg"))[:n]):
        Image.open(p).save(root / "images" / p.name)
        rows.append(f"{p.name},{classes[i % len(classes)]}")
    (root / "labels.csv").write_text("\n".join(rows) + "\n")
    return root


def test_pipeline_through_the_cli(tmp_path, face_photos):
    photos = tmp_path / "pool"
    shutil.copytree(face_photos, photos)
    (photos / "notes.jpg").write_text("not a photo")  # recorded in the manifest, listed by info --skipped
    labelled = _labelled_folder(tmp_path / "labelled", photos, 8)
    work = tmp_path / "distill-work"

    cropped = _cli("crop", str(photos), cwd=tmp_path)
    store = work / "faces" / "pool.h5"
    assert str(store.resolve()) in cropped.stdout  # summaries print full paths
    labelling = _cli("label", "--teacher", "mini_xception", "--views", "2", cwd=tmp_path).stderr
    assert re.search(r"about \d+:\d\d for \d+ faces, 3 teacher passes each", labelling)  # on stderr, with the bar
    _cli("train", "--epochs", "1", "--workers", "0", "--batch-size", "8", "--size", "32", cwd=tmp_path)
    run = next((work / "runs").iterdir())
    assert (run / "student.pt").is_file() and (run / "curves.png").is_file()
    assert json.loads((run / "config.json").read_text())["train"]["loss"] == "kld"
    _cli("export", cwd=tmp_path)  # the newest student -> run/student.pt2 (112 px crops), scored below like the run
    _cli("export", "--format", "onnx", cwd=tmp_path)
    exported = ("--model", str(run / "student.pt2"), "--model", str(run / "student.onnx"))
    models = ("--model", str(run), "--model", "mini_xception", *exported)
    done = _cli("eval", "csv", "--data", str(labelled), *models, cwd=tmp_path)
    assert "accuracy" in done.stdout
    report = json.loads(next((work / "evals").glob("*/eval.json")).read_text())
    scores = [r["scores"] for r in report["results"]]
    assert [s["n_scored"] for s in scores] == [8, 8, 8, 8]
    assert scores[2]["predictions"] == scores[0]["predictions"]  # the exported graphs are the student
    assert scores[3]["predictions"] == scores[0]["predictions"]
    facts = [r["facts"]["parameters"] for r in report["results"]]
    assert facts[2] == facts[0] and 0.9 * facts[0] < facts[3] <= facts[0]  # ONNX folds BatchNorm into the convs
    for s in scores:  # independent recomputation of accuracy from the saved predictions
        hits = sum(p == t for p, t in zip(s["predictions"], s["targets"], strict=True))
        assert abs(hits / 8 - s["accuracy"]) < 1e-6

    # eval's crops of the test set live under evals/: a plain label (and so train) still takes the photos
    plain = _cli("label", "--teacher", "mini_xception", cwd=tmp_path).stderr
    assert "1 teacher pass each (the face; no cached views" in plain  # a cheap teacher: students run it on views
    with h5py.File(work / "caches" / "pool--mini_xception.h5") as f:
        assert f.attrs["store_path"] == str(store.resolve()) and f.attrs["views"] == 0
    assert not list((work / "faces").glob("*eval*")) and list((work / "evals" / "crops").glob("*.h5"))

    second = _labelled_folder(tmp_path / "second", photos, 4)  # a second set read by the same reader
    _cli("eval", "csv", "--data", str(second), "--model", str(run), cwd=tmp_path)
    _cli("report", cwd=tmp_path)
    table = (work / "report.md").read_text()
    student_row = next(line for line in table.splitlines() if line.startswith(f"| {run.name} | labelled (csv) |"))
    assert f"{100 * scores[0]['accuracy']:.2f}" in student_row
    assert any(line.startswith(f"| {run.name} | second (csv) |") for line in table.splitlines())
    assert (work / "report.png").is_file()

    ckpt = run / "checkpoints" / "last.ckpt"
    paths = [store, work / "caches" / "pool--mini_xception.h5", run, run / "student.pt", ckpt, *exported[1::2]]
    info = _cli("info", *map(str, paths), cwd=tmp_path).stdout
    for kind in ("face store", "posterior cache", "training run", "student", "training checkpoint", "ONNX graph"):
        assert f"({kind}):" in info, kind
    assert "exported graph (torch.export)" in info and "{" not in info  # readable, no JSON inside JSON
    skipped = _cli("info", str(store), "--skipped", cwd=tmp_path).stdout
    assert f"{photos / 'notes.jpg'}: not-an-image" in skipped


def test_fit_teacher_then_label_and_score_only_held_out_faces(tmp_path, face_photos):
    labelled = _labelled_folder(tmp_path / "labelled", face_photos, 13, ("happy", "neutral", "sad"))
    fit = ("fit-teacher", "--data", str(labelled), "--width", "0.05", "--size", "32", "--epochs", "1")
    _cli(*fit, "--workers", "0", "--batch-size", "4", "--test-fraction", "0.3", "--val-fraction", "0.3", cwd=tmp_path)
    # the fitted teacher's run folder, beside teachers/crops/ (a folder listing has no set order)
    teacher_dir = next(p for p in (tmp_path / "distill-work" / "teachers").iterdir() if p.name != "crops")
    split = json.loads((teacher_dir / "split.json").read_text())
    store = tmp_path / "distill-work" / "teachers" / "crops" / "labelled-labelled.h5"  # never the newest faces
    faces = len(FaceStore(store))
    assert sum(map(len, split.values())) == faces and all(split.values())
    assert not set(split["test"]) & set(split["train"])
    summary = json.loads((teacher_dir / "summary.json").read_text())
    assert summary["classes"] == ["happiness", "neutral", "sadness"] and 0 <= summary["test"]["test/accuracy"] <= 1

    _cli("label", str(store), "--teacher", "vgg_s", cwd=tmp_path)  # finds the fitted weights in the workspace
    cache = next((tmp_path / "distill-work" / "caches").glob("*vgg_s*.h5"))
    with h5py.File(cache) as f:
        assert json.loads(f.attrs["classes"]) == summary["classes"]
    # an ensemble of teachers with different input formats (224-style RGB ImageNet-normalised VGG-S, 64 px grey
    # mini-Xception) and class sets, on the same store: mini_xception's extra classes are dropped explicitly
    drop = "anger=-,disgust=-,fear=-,surprise=-"
    _cli("label", str(store), "--teacher", "vgg_s+mini_xception", "--class-map", drop, cwd=tmp_path)
    ensemble_cache = next((tmp_path / "distill-work" / "caches").glob("*vgg_s__mini_xception*.h5"))
    with h5py.File(ensemble_cache) as f:
        assert json.loads(f.attrs["classes"]) == summary["classes"]
        assert len(json.loads(f.attrs["teacher"])["members"]) == 2
        np.testing.assert_allclose(f["probs"][()].sum(1), 1, rtol=1e-5)
    keys = teacher_dir / "test-keys.txt"
    _cli("eval", "csv", "--data", str(labelled), "--keys", str(keys), "--model", "vgg_s", cwd=tmp_path)
    report = json.loads(next((tmp_path / "distill-work" / "evals").glob("*/eval.json")).read_text())
    assert report["results"][0]["scores"]["n_scored"] == len(split["test"])
    # a subset is a dataset of its own: `report` never shows its score as the whole set's
    assert report["dataset"].endswith(f"the {len(split['test'])} faces of --keys test-keys.txt")
    assert report["dataset_path"] == f"{labelled.resolve()}?keys={keys.resolve()}"


def test_fit_teacher_on_small_face_crops_takes_each_image_whole(tmp_path, face_store):
    """A FER2013-like set (48 px face crops): no detection, each image is the face, and the teacher records the
    framing that shows it exactly that image, which it keeps when it labels (unless the spec gives ?crop=)."""
    from distill.teachers.build import build_teacher

    labelled = tmp_path / "fer-like"
    (labelled / "images").mkdir(parents=True)
    faces = FaceStore(face_store)
    rows = ["image,emotion"]
    for i in range(12):
        Image.fromarray(faces.pixels(i % len(faces))).resize((48, 48)).convert("L").save(
            labelled / "images" / f"{i}.jpg"
        )
        rows.append(f"{i}.jpg,{('happy', 'sad')[i % 2]}")
    (labelled / "labels.csv").write_text("\n".join(rows) + "\n")
    fit = ("fit-teacher", "--data", str(labelled), "--width", "0.05", "--size", "32", "--epochs", "1")
    out = _cli(
        *fit, "--workers", "0", "--batch-size", "4", "--test-fraction", "0.3", "--val-fraction", "0.3", cwd=tmp_path
    )
    assert "detector    whole" in out.stdout
    store = FaceStore(tmp_path / "distill-work" / "teachers" / "crops" / "fer-like-labelled-whole.h5")
    assert len(store) == 12 and store.attrs["detector"] == "whole"  # every image, none lost to a detector
    checkpoint = next((tmp_path / "distill-work" / "teachers").glob("*/teacher.pt"))
    assert build_teacher(f"vgg_s:{checkpoint}").preprocess.crop == pytest.approx(0.8)  # 1 / (1 + margin 0.25)
    assert build_teacher(f"vgg_s:{checkpoint}?crop=1").preprocess.crop == 1.0
    assert build_teacher(f"vgg_s:{checkpoint}").mirror  # scored, and later labels, averaged with mirror images

    # the papers' second row: the student's network trained on the same labels (weights averaged), a student file
    _cli(
        "fit-teacher",
        "--data",
        str(labelled),
        "--arch",
        "squeezenet1_1_bn",
        "--size",
        "32",
        "--epochs",
        "1",
        "--ema",
        "0.9",
        "--workers",
        "0",
        "--batch-size",
        "4",
        "--test-fraction",
        "0.3",
        "--val-fraction",
        "0.3",
        cwd=tmp_path,
    )
    run = next((tmp_path / "distill-work" / "teachers").glob("*-squeezenet1_1_bn"))
    summary = json.loads((run / "summary.json").read_text())
    student = load_student(summary["spec"])
    assert summary["spec"] == str(run / "student.pt") and student.classes == ["happiness", "sadness"]
    assert student.preprocess.crop == pytest.approx(0.8) and student(torch.rand(2, 3, 48, 48)).shape == (2, 2)
    # continued from its checkpoint: the same folder, settings and split, the epochs before kept in the log
    (run / "student.pt").unlink()
    out = _cli("fit-teacher", "--resume", str(run / "checkpoints" / "last.ckpt"), cwd=tmp_path).stdout
    assert (run / "student.pt").is_file() and "fit-teacher summary" in out
    assert list((tmp_path / "distill-work" / "teachers").glob("*-squeezenet1_1_bn")) == [run]
    assert json.loads((run / "config.json").read_text())["fit"]["ema"] == 0.9
    logged = list(csv.DictReader((run / "logs" / "metrics.csv").open()))
    assert any(row["epoch"] == "0" and row.get("val/uar") for row in logged)


def test_demo_runs_the_whole_pipeline(tmp_path):
    from distill.commands import demo
    from distill.workspace import Workspace

    summary = demo.run(Workspace(tmp_path / "w"), epochs=1, show_progress=False)
    assert summary["held_out_faces"] >= 5 and 0 <= summary["agreement_with_teacher"] <= 1
    assert 0 <= summary["bwn_agreement_with_teacher"] <= 1 and Path(summary["bwn_student"]).is_file()
    assert "demo-squeezenet1_1-kld" in (tmp_path / "w" / "report.md").read_text()
    assert "distill crop" in summary["explain"]  # says how to run the real thing


def test_a_pruned_student_goes_to_work_as_int8(tmp_path, face_photos, face_store):
    """compress (channel pruning, then int8 weights) -> export --int8 -> eval and predict, as a user runs them."""
    from distill.config import LabelConfig, TrainConfig
    from distill.labelling.label import label
    from distill.training.train import train

    work = tmp_path / "distill-work"
    cache = work / "caches" / "pool.h5"
    label(face_store, cache, LabelConfig(teacher="mini_xception", views=0), show_progress=False)
    run = work / "runs" / "20260101-000000-squeezenet1_1_bn-kld"
    train([(face_store, cache)], run, TrainConfig(epochs=1, batch_size=4, size=32, workers=0), show_progress=False)
    _cli("compress", str(run), "--method", "prune-ch:0.3+quant", "--epochs", "1", "--stages", "1", cwd=tmp_path)
    compressed = next((work / "compressed").iterdir())
    _cli("export", str(compressed), "--format", "onnx", "--int8", "--calibrate", str(face_store), cwd=tmp_path)
    graph = compressed / "model.int8.onnx"
    assert graph.is_file()
    labelled = _labelled_folder(tmp_path / "labelled", face_photos, 6)
    _cli("eval", "csv", "--data", str(labelled), "--model", str(graph), "--model", str(compressed), cwd=tmp_path)
    report = json.loads(next((work / "evals").glob("*/eval.json")).read_text())
    assert [r["runtime"] for r in report["results"]][0] == "onnxruntime"
    assert all(r["scores"]["n_scored"] == 6 for r in report["results"])
    photos = tmp_path / "photos"
    shutil.copytree(labelled / "images", photos)
    done = _cli("predict", str(photos), "--model", str(graph), "--out", str(tmp_path / "out"), cwd=tmp_path)
    facts = dict(line.split(maxsplit=1) for line in done.stdout.splitlines()[1:])
    assert facts["runtime"] == "onnxruntime" and facts["model"] == str(graph.resolve())
    rows = (tmp_path / "out" / "predictions.csv").read_text().splitlines()
    assert len(rows) > 6 and any(",anger," in r or ",happiness," in r or ",neutral," in r for r in rows[1:])


def test_compress_with_no_flags_deploys_its_chosen_plan(tmp_path, face_photos, face_store, monkeypatch):
    """`distill compress` alone: the plan chosen on held-out faces, saved with its curve; predict then runs the int8
    graph it chose (a folder given as --model)."""
    from distill.config import LabelConfig, TrainConfig
    from distill.labelling.label import label
    from distill.training.train import train

    work = tmp_path / "distill-work"
    cache = work / "caches" / "pool.h5"
    label(face_store, cache, LabelConfig(teacher="mini_xception", views=0), show_progress=False)
    run = work / "runs" / "20260101-000000-squeezenet1_1_bn-kld"
    train([(face_store, cache)], run, TrainConfig(epochs=1, batch_size=4, size=32, workers=0), show_progress=False)
    done = _cli("compress", "--tolerance", "100", cwd=tmp_path)  # the newest run; every step passes
    said = " ".join((done.stdout + done.stderr).split())  # the console wraps long lines
    assert "auto: prune-ch (global) up to 0.7" in said and "plan prune-ch:0.7 + int8" in said
    compressed = next((work / "compressed").iterdir())
    assert compressed.name.endswith("-auto")
    summary = json.loads((compressed / "summary.json").read_text())
    assert summary["plan"]["chosen"] == "prune-ch:0.7 + int8" and len(summary["plan"]["curve"]) == 16
    photos = tmp_path / "photos"
    shutil.copytree(face_photos, photos)
    out = _cli("predict", str(photos), "--model", str(compressed), "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert f"its int8 graph {compressed / 'model.int8.onnx'}" in out.stdout
    labelled = _labelled_folder(tmp_path / "labelled", face_photos, 6)
    _cli("eval", "csv", "--data", str(labelled), "--model", str(compressed), cwd=tmp_path)
    report = json.loads(next((work / "evals").glob("*/eval.json")).read_text())
    assert report["results"][0]["runtime"] == f"onnxruntime, its int8 graph {compressed / 'model.int8.onnx'}"
    assert report["results"][0]["facts"]["bytes_on_disk"] == (compressed / "model.int8.onnx").stat().st_size
