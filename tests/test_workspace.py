"""The workspace: which artefact is the newest, stores that never collide, run folders that a refusal removes."""

import os
from pathlib import Path

import pytest

from distill.errors import DistillError
from distill.faces.store import record_source
from distill.provenance import store_name
from distill.workspace import Workspace, holds_work


def test_generic_leaf_names_take_their_parent_name(tmp_path):
    (tmp_path / "faces-unlabeled" / "images").mkdir(parents=True)
    assert store_name(tmp_path / "faces-unlabeled" / "images") == "faces-unlabeled"
    assert store_name(tmp_path / "faces-unlabeled") == "faces-unlabeled"


def test_a_second_folder_of_the_same_name_gets_its_own_store(tmp_path):
    ws = Workspace(tmp_path / "w")
    photos, images = tmp_path / "x" / "photos", tmp_path / "x" / "images"
    photos.mkdir(parents=True)
    images.mkdir()
    plain = ws.store_for(photos)
    assert plain == ws.dir("faces") / "x.h5"
    record_source(plain, str(photos.resolve()), 112)  # an interrupted crop of photos/ holds the name
    assert ws.store_for(photos) == plain
    other = ws.store_for(images)
    assert other != plain and other.name.startswith("x-") and other.parent == plain.parent
    assert ws.store_for(images) == other  # stable: the same folder finds its store again


def test_eval_crops_are_no_training_material(tmp_path):
    ws = Workspace(tmp_path / "w")
    store = ws.eval_store("csv", tmp_path / "expressions-dev", 112)
    store.parent.mkdir(parents=True)
    store.write_bytes(b"")
    assert ws.all("faces") == [] and ws.dir("eval") in store.parents
    dark = ws.eval_store("csv", tmp_path / "expressions-dev", 112, "blazeface", "dark")
    assert dark.name == "csv-expressions-dev-112-blazeface-dark.h5"  # one store a detector and photo condition


def test_newest_model_is_a_student_or_a_compressed_model(tmp_path):
    ws = Workspace(tmp_path / "w")
    with pytest.raises(DistillError, match="no student in"):
        ws.newest_model()
    run = ws.dir("run") / "a"
    run.mkdir(parents=True)
    (run / "student.pt").write_bytes(b"")
    squeezed = ws.dir("compressed") / "b"
    squeezed.mkdir(parents=True)
    (squeezed / "model.distill").write_bytes(b"")
    os.utime(run / "student.pt", (1, 1))
    assert ws.newest_model() == squeezed / "model.distill"
    os.utime(squeezed / "model.distill", (0, 0))
    assert ws.newest_model() == run / "student.pt"


def test_a_refused_run_leaves_no_folder_and_a_computed_one_is_kept(tmp_path):
    ws = Workspace(tmp_path / "w")
    with pytest.raises(DistillError), ws.new_run("run", "s-kld:0.9+label") as refused:
        (refused / "config.json").write_text("{}")
        raise DistillError("refused after the folder was made")
    assert not refused.exists() and ":" not in refused.name and "+" not in refused.name
    with pytest.raises(KeyboardInterrupt), ws.new_run("run", "s") as stopped:
        (stopped / "checkpoints").mkdir()
        (stopped / "checkpoints" / "last.ckpt").write_bytes(b"")
        raise KeyboardInterrupt
    assert stopped.is_dir() and holds_work(stopped)  # what was computed is never lost


def test_a_relative_workdir_hands_out_full_paths(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ws = Workspace(Path("wd1"))
    assert ws.root == tmp_path / "wd1" and ws.dir("eval").is_absolute()
