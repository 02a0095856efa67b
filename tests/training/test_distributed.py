"""2-process CPU DDP (gloo) for `distill label` and `distill train`, through the CLI as a user runs them."""

import csv
import json
import shutil
import subprocess
import sys

import h5py
import numpy as np
import pytest

from distill.distributed import parse_devices, per_process_batch, shared_run_name
from distill.errors import DistillError
from distill.faces.store import FaceStore

DDP = ("--accelerator", "cpu", "--devices", "2", "--strategy", "ddp")


def _cli(*args, cwd):
    done = subprocess.run([sys.executable, "-m", "distill.cli", *args], capture_output=True, text=True, cwd=cwd)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


@pytest.fixture(scope="module")
def labelled(tmp_path_factory, face_store):
    """The same store labelled by one process and by two (parts of 3 faces: ranks interleave 5 parts)."""
    root = tmp_path_factory.mktemp("ddp")
    shutil.copy(face_store, root / "faces.h5")
    args = ("label", "faces.h5", "--views", "2", "--part-rows", "3")
    _cli(*args, "--out", "one.h5", cwd=root)
    two = _cli(*args, "--out", "two.h5", *DDP, cwd=root)
    return root, two


def test_label_on_two_processes_matches_one(labelled):
    root, two = labelled
    assert two.stdout.count("label summary") == 1  # only rank 0 reports
    keys = FaceStore(root / "faces.h5").keys
    with h5py.File(root / "one.h5") as one, h5py.File(root / "two.h5") as dual:
        assert len(keys) > 6  # several parts per rank
        assert list(dual["keys"].asstr()[()]) == keys  # every face once, in store order
        for name in ("logits", "probs", "views/params", "views/logits"):
            np.testing.assert_allclose(dual[name][()], one[name][()], rtol=1e-5, atol=1e-5)
        assert json.loads(dual.attrs["teacher"]) == json.loads(one.attrs["teacher"])
    assert not (root / "two.h5.parts").exists()


def test_train_on_two_processes_makes_one_run(labelled):
    root, _ = labelled
    args = ("train", "two.h5", "--epochs", "2", "--size", "32", "--grey", "--workers", "0", "--batch-size", "4")
    done = _cli(*args, *DDP, cwd=root)
    assert done.stdout.count("train summary") == 1
    runs = list((root / "distill-work" / "runs").iterdir())
    assert len(runs) == 1, runs  # ranks Lightning started wrote into rank 0's folder
    run = runs[0]
    config = json.loads((run / "config.json").read_text())["train"]
    assert (config["devices"], config["strategy"], config["batch_size"]) == ("2", "ddp", 4)
    epochs = {int(r["epoch"]) for r in csv.DictReader(open(run / "logs" / "metrics.csv")) if r["val/agreement"]}
    assert epochs == {0, 1}
    summary = json.loads((run / "summary.json").read_text())
    assert 0.0 <= summary["final_metrics"]["val/agreement"] <= 1.0
    assert (run / "student.pt").is_file()


def test_batch_splits_evenly_or_is_refused():
    assert per_process_batch(64, 2) == 32
    with pytest.raises(DistillError, match="does not split evenly"):
        per_process_batch(63, 2)


def test_device_forms_and_job_naming(monkeypatch):
    assert (parse_devices("2"), parse_devices("auto"), parse_devices("0,2")) == (2, "auto", [0, 2])
    for var in ("DISTILL_RUN_DIR", "SLURM_JOB_ID", "TORCHELASTIC_RUN_ID", "WORLD_SIZE", "SLURM_NTASKS"):
        monkeypatch.delenv(var, raising=False)
    assert shared_run_name() is None  # a plain process picks a fresh folder
    monkeypatch.setenv("SLURM_JOB_ID", "4242")
    assert shared_run_name() is None  # a one-task SLURM job is a plain process too
    monkeypatch.setenv("SLURM_NTASKS", "8")
    assert shared_run_name() == "job4242"  # every rank of the job derives the same folder
    monkeypatch.delenv("SLURM_JOB_ID")
    monkeypatch.delenv("SLURM_NTASKS")
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("TORCHELASTIC_RUN_ID", "none")  # torchrun without --rdzv-id
    monkeypatch.setenv("MASTER_ADDR", "head")
    monkeypatch.setenv("MASTER_PORT", "29500")
    assert shared_run_name() == "jobhead-29500"
