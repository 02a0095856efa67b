"""Crash-resume under real SIGKILLs, training resume, unwritable outputs, a full disk, foreign artefacts."""

import errno
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import h5py
import pytest
import torch

from distill.config import LabelConfig
from distill.errors import DistillError
from distill.faces.store import FaceStore
from distill.labelling.label import label
from distill.students.model import Student, load_student
from distill.training.train import resume_run

from .killing import assert_same_output, rerun, run_and_kill

# (parts written before the kill, extra delay in s): between parts, inside a paced part, late (merge)
CI_POINTS = [(1, 0.05), (3, 0.2)]


@pytest.mark.parametrize("what", ["crop", "label"])
@pytest.mark.parametrize(("after_parts", "delay"), CI_POINTS)
def test_sigkill_then_rerun_equals_an_uninterrupted_run(tmp_path, face_photos, face_store, what, after_parts, delay):
    src = face_photos if what == "crop" else face_store
    reference, killed = tmp_path / "whole.h5", tmp_path / "killed.h5"
    rerun(what, src, reference)
    assert run_and_kill(what, src, killed, after_parts, delay), "the kill came after the run had finished"
    assert not killed.exists() and list((tmp_path / "killed.h5.parts").glob("part-*"))
    rerun(what, src, killed)
    assert_same_output(what, reference, killed)
    assert not (tmp_path / "killed.h5.parts").exists() and not list(tmp_path.glob(".*.tmp"))


def test_killed_training_resumes_from_its_last_checkpoint(tmp_path, face_store):
    import signal
    import time

    cache = tmp_path / "cache.h5"
    label(face_store, cache, LabelConfig(teacher="mini_xception"), show_progress=False)
    args = ["--workdir", "w", "train", str(cache), "--epochs", "3", "--workers", "0", "--batch-size", "4"]
    child = subprocess.Popen([sys.executable, "-m", "distill.cli", *args, "--size", "32", "--grey"], cwd=tmp_path)
    deadline = time.monotonic() + 300
    while not list(tmp_path.glob("w/runs/*/checkpoints/last.ckpt")) and time.monotonic() < deadline:
        time.sleep(0.02)
    killed = child.poll() is None
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert killed
    last = next(tmp_path.glob("w/runs/*/checkpoints/last.ckpt"))
    killed_at = torch.load(last, weights_only=True)["global_step"]
    resume_run(last, show_progress=False)  # the run's own config: same caches, 3 epochs in all
    assert torch.load(last, weights_only=True)["global_step"] > killed_at  # continued, not restarted
    run = last.parents[1]
    assert (run / "student.pt").is_file()
    epochs = {line.split(",")[0] for line in (run / "logs" / "metrics.csv").read_text().splitlines()[1:]}
    assert epochs == {"0", "1", "2"}  # the epochs before the kill are kept in the log


def _cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "distill.cli", *args], capture_output=True, text=True, cwd=cwd)


def test_unwritable_output_is_a_one_line_error(tmp_path, face_store):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the output folder should be")
    given = ("--teacher", "mini_xception", "--views", "0")  # every setting given: no settings line before the error
    done = _cli("label", str(face_store), *given, "--out", str(blocker / "cache.h5"), cwd=tmp_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "not-a-folder" in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_disk_full_mid_label_keeps_finished_parts_and_the_same_command_finishes(tmp_path, face_store, monkeypatch):
    """ENOSPC injected (a small tmpfs: the closing note's check): the 3rd part's write fails as one line and the
    parts before stay; joining the parts is refused where the disk cannot hold the cache; with room, the same
    command labels only what is missing and joins them."""
    import distill.labelling.cache as cache_module
    import distill.labelling.label as lab

    real_write, writes = Path.write_bytes, {"n": 0}

    def write_bytes(path, data):  # the 3rd part written finds the disk full
        if path.name.startswith(".part-"):
            writes["n"] += 1
            if writes["n"] == 3:
                raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(path, data)

    monkeypatch.setattr(Path, "write_bytes", write_bytes)
    cfg = LabelConfig(teacher="mini_xception", part_rows=2)
    with pytest.raises(DistillError, match=r"cannot write .*part-000000004.h5: the disk holding .* is full$"):
        label(face_store, tmp_path / "c.h5", cfg, show_progress=False)
    parts = tmp_path / "c.h5.parts"
    assert not (tmp_path / "c.h5").exists() and len(list(parts.glob("part-*.h5"))) == 2
    assert not list(parts.glob(".*.tmp"))  # the failed part left no temporary file behind
    monkeypatch.setattr(Path, "write_bytes", real_write)
    monkeypatch.setattr(cache_module.shutil, "disk_usage", lambda _: SimpleNamespace(free=0))
    with pytest.raises(DistillError, match=r"has 0.0 MiB free .* the labelled parts are kept in .*c.h5.parts"):
        label(face_store, tmp_path / "c.h5", cfg, show_progress=False)
    assert not (tmp_path / "c.h5").exists() and len(list(parts.glob("part-*.h5"))) == len(
        range(0, len(FaceStore(face_store)), 2)
    )
    monkeypatch.undo()
    labelled = []
    monkeypatch.setattr(lab, "_label_rows", lambda *a, **k: labelled.append(1))  # every part is there already
    label(face_store, tmp_path / "c.h5", cfg, show_progress=False)
    assert not labelled and not parts.exists()
    monkeypatch.undo()
    label(face_store, tmp_path / "ref.h5", cfg, show_progress=False)
    with h5py.File(tmp_path / "c.h5") as a, h5py.File(tmp_path / "ref.h5") as b:
        assert (a["logits"][()] == b["logits"][()]).all()


def test_checkpoint_of_another_architecture_is_refused(tmp_path):
    student = Student("squeezenet1_1_bn", ["a", "b"], size=32)
    student.save(tmp_path / "s.pt")
    blob = torch.load(tmp_path / "s.pt", weights_only=True)
    blob["arch_kwargs"]["arch"] = "mobilenetv3_small_100"
    torch.save(blob, tmp_path / "other.pt")
    with pytest.raises(DistillError, match="does not fit mobilenetv3_small_100"):
        load_student(tmp_path / "other.pt")
    with h5py.File(tmp_path / "foreign.h5", "w") as f:
        f["x"] = [1, 2, 3]
    with pytest.raises(DistillError, match="not a distill file"):
        load_student_or_cache(tmp_path / "foreign.h5")


def load_student_or_cache(path):
    from distill.labelling.cache import PosteriorCache

    return PosteriorCache(path)


def test_cache_whose_teacher_changed_is_refused_for_online_teaching(tmp_path, face_store):
    import json

    from distill.config import TrainConfig
    from distill.training.train import train

    cache = tmp_path / "cache.h5"
    label(face_store, cache, LabelConfig(teacher="mini_xception"), show_progress=False)
    with h5py.File(cache, "r+") as f:  # as if the teacher file had been replaced since labelling
        teacher = json.loads(f.attrs["teacher"])
        teacher["weights_sha256"] = "0" * 64
        f.attrs["teacher"] = json.dumps(teacher)
    cfg = TrainConfig(epochs=1, batch_size=4, size=32, workers=0, online_teacher=True)
    with pytest.raises(DistillError, match="re-run `distill label`"):
        train([(face_store, cache)], tmp_path / "run", cfg, show_progress=False)
