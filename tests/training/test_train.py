"""Training from pooled caches, online teaching with mixup, refusals; tiny real faces, one short epoch each."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from distill.config import CropConfig, LabelConfig, TrainConfig
from distill.datasets.readers import read_folder
from distill.errors import DistillError
from distill.faces.crop import crop
from distill.labelling.cache import PosteriorCache
from distill.labelling.label import label
from distill.students.model import Student, load_student
from distill.training.defaults import resolve
from distill.training.distill_module import mix, progressive_side
from distill.training.train import fine_tune, train

TINY = {"epochs": 1, "batch_size": 4, "size": 32, "grey": True, "workers": 0}


@pytest.fixture(scope="module")
def two_sources(tmp_path_factory, face_photos, face_store):
    """(store, cache) pairs: the shared face store and a second store of five photos, same teacher."""
    root = tmp_path_factory.mktemp("pool")
    second = root / "second.h5"
    crop(
        face_photos,
        second,
        CropConfig(size=64),
        reader="folder",
        samples=read_folder(face_photos)[:5],
        show_progress=False,
    )
    pairs = []
    for store, views in ((face_store, 2), (second, 0)):
        cache = root / f"{store.stem}-cache.h5"
        label(store, cache, LabelConfig(teacher="mini_xception", views=views), show_progress=False)
        pairs.append((store, cache))
    return pairs


def test_pooled_caches_train_with_online_teacher_and_mixup(tmp_path, two_sources, monkeypatch):
    cfg = TrainConfig(online_teacher=True, mixup=0.4, temperature=1.0, **TINY)
    monkeypatch.chdir(two_sources[0][1].parent)  # sources named relative to where train runs are still recorded whole
    relative = [(Path(s.name) if s.parent == Path.cwd() else s, Path(c.name)) for s, c in two_sources]
    summary = train(relative, tmp_path, cfg, show_progress=False)
    config = json.loads((tmp_path / "config.json").read_text())
    assert len(config["sources"]) == 2 and config["train"]["online_teacher"] is True
    assert all(Path(s["store"]).is_absolute() and Path(s["cache"]).is_absolute() for s in config["sources"])
    ckpt = torch.load(summary["best_checkpoint"], map_location="cpu", weights_only=True)
    assert ckpt["state_dict"] and not any(k.startswith("teacher.") for k in ckpt["state_dict"])
    assert not any(k.startswith("teacher.") for k in ckpt.get("current_model_state", {}))  # the EMA's copy neither
    assert "train/epoch_seconds" in (tmp_path / "logs" / "metrics.csv").read_text()


def test_mixup_needs_the_online_teacher(tmp_path, two_sources, monkeypatch):
    import distill.teachers.build as spec

    monkeypatch.setattr(spec, "CHEAP_TEACHER", 10)  # a teacher too big to run every step: no online teaching
    with pytest.raises(DistillError, match="--online-teacher"):
        train(two_sources, tmp_path, TrainConfig(mixup=0.4, **TINY), show_progress=False)


def test_caches_of_different_teachers_are_not_pooled(tmp_path, two_sources):
    (store, _), (other_store, _) = two_sources
    foreign = tmp_path / "foreign.h5"
    label(other_store, foreign, LabelConfig(teacher="mini_xception@0.5"), show_progress=False)
    with pytest.raises(DistillError, match="caches of one teacher"):
        train([two_sources[0], (other_store, foreign)], tmp_path / "run", TrainConfig(**TINY), show_progress=False)


def test_mix_keeps_shape_and_range_and_blends_faces():
    torch.manual_seed(0)
    x = torch.stack([torch.zeros(1, 4, 4), torch.ones(1, 4, 4)] * 8)
    mixed = mix(x, 0.4)
    assert mixed.shape == x.shape and mixed.min() >= 0 and mixed.max() <= 1
    assert ((mixed > 0) & (mixed < 1)).any()  # some faces are blends of a black and a white one


def test_balanced_class_weights_are_inverse_square_root_frequency():
    import numpy as np

    from distill.training.supervised import _class_weights

    targets = np.array([0] * 100 + [1] * 25 + [2] * 4)  # class 3 never occurs: counted as 1
    w = _class_weights(targets, 4, balanced=True)
    raw = torch.tensor([100, 25, 4, 1], dtype=torch.float32) ** -0.5
    torch.testing.assert_close(w, raw / raw.mean())
    assert w[2] / w[0] == pytest.approx(5.0) and w.mean().item() == pytest.approx(1.0)
    assert torch.equal(_class_weights(targets, 4, balanced=False), torch.ones(4))


def test_optimizers_by_name_and_an_unknown_one_refused():
    from distill.training.trainer import make_optimizer

    params = [torch.nn.Parameter(torch.zeros(2))]
    sgd = make_optimizer("sgd", params, 0.1, 5e-4)
    assert isinstance(sgd, torch.optim.SGD) and sgd.defaults["nesterov"] and sgd.defaults["momentum"] == 0.9
    assert isinstance(make_optimizer("adamw", params, 1e-3, 5e-4), torch.optim.AdamW)
    with pytest.raises(DistillError, match="choose one of adamw, sgd"):
        make_optimizer("lamb", params, 1e-3, 0)


def test_balance_draws_faces_by_inverse_power_of_the_teachers_class_frequency(two_sources):
    from distill.training.data import DistillData

    natural = DistillData(two_sources, batch_size=4, workers=0)
    assert natural.train_sampler() is None
    data = DistillData(two_sources, batch_size=4, workers=0, balance=0.5)
    labels = data.teacher_classes(data.train_set)
    assert len(labels) == len(data.train_set)
    first = data.train_set[0]  # the ConcatDataset's order: the first source's first training face
    assert labels[0] == int(data.pairs[0][1].logits[int(first["index"])].argmax())
    weights = data.train_sampler().weights.numpy()
    freq = np.bincount(labels)
    np.testing.assert_allclose(weights, freq[labels] ** -0.5)
    shares = np.bincount(labels, weights=weights) / weights.sum()  # each class's expected share of a draw
    present = freq[freq > 0]
    np.testing.assert_allclose(shares[freq > 0], np.sqrt(present) / np.sqrt(present).sum())
    limited = DistillData(two_sources, batch_size=4, workers=0, limit=6, balance=1.0)
    assert len(limited.teacher_classes(limited.train_set)) == len(limited.train_set) == 6
    with pytest.raises(DistillError, match=r"--balance 2.0: must be in \[0, 1\]"):  # refused by the settings
        TrainConfig(balance=2.0)


def test_store_targets_map_labels_to_the_teachers_classes():
    from distill.training.data import store_targets

    targets = store_targets(["happy", "", "contempt", "Anger", "neutral"], ["angry", "happiness", "neutral"])
    assert targets.tolist() == [1, -1, -1, 0, 2]


def test_ce_learns_from_a_labelled_store_and_is_refused_without_labels(tmp_path, face_photos, two_sources):
    import dataclasses

    samples = [dataclasses.replace(s, label="happiness") for s in read_folder(face_photos)]  # as face_store
    store = tmp_path / "labelled.h5"
    crop(face_photos, store, CropConfig(size=64), reader="csv", samples=samples, show_progress=False)
    cache = tmp_path / "labelled-cache.h5"
    label(store, cache, LabelConfig(teacher="mini_xception"), show_progress=False)
    summary = train([(store, cache)], tmp_path / "run", TrainConfig(loss="kld+ce", **TINY), show_progress=False)
    metrics = (tmp_path / "run" / "logs" / "metrics.csv").read_text()
    assert summary["student"] and "train/ce" in metrics
    with pytest.raises(DistillError, match="needs a labelled face store"):
        train(two_sources[:1], tmp_path / "bad", TrainConfig(loss="kld+ce", **TINY), show_progress=False)


def test_ema_exports_the_averaged_weights_and_a_bad_decay_is_refused(tmp_path, two_sources):
    from distill.students.model import load_student

    summary = train(two_sources, tmp_path, TrainConfig(ema=0.5, **TINY), show_progress=False)
    last = torch.load(tmp_path / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    averaged, current = last["state_dict"], last["current_model_state"]  # Lightning's EMA keeps both
    key = next(k for k in averaged if k.startswith("student.net.") and k.endswith("weight"))
    assert not torch.equal(averaged[key], current[key])
    exported = load_student(summary["student"]).net.state_dict()
    best = torch.load(summary["best_checkpoint"], map_location="cpu", weights_only=True)["state_dict"]
    assert torch.equal(exported[key[len("student.net.") :]], best[key])
    with pytest.raises(DistillError, match=r"--ema 1.5: must be in \[0, 1\)"):  # refused before any work
        TrainConfig(ema=1.5, **TINY)


@pytest.mark.parametrize("stop", ["ctrl-c", "kill"])
def test_ctrl_c_or_kill_saves_last_ckpt_and_says_how_to_resume(tmp_path, two_sources, monkeypatch, stop, caplog):
    import logging
    import signal
    import warnings

    from lightning.pytorch.utilities.exceptions import SIGTERMException

    from distill.errors import Interrupted
    from distill.progress import quiet_libraries
    from distill.training.distill_module import DistillModule
    from distill.training.train import resume_run

    real, stopped = DistillModule.training_step, []

    def step(self, batch, index):
        if self.global_step == 2 and not stopped:
            stopped.append(True)
            # what Ctrl-C raises mid-epoch; on SIGTERM Lightning raises its SIGTERMException after the batch
            raise KeyboardInterrupt if stop == "ctrl-c" else SIGTERMException
        return real(self, batch, index)

    monkeypatch.setattr(DistillModule, "training_step", step)
    handler = signal.getsignal(signal.SIGINT)  # Lightning ignores SIGINT while it shuts down
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    with warnings.catch_warnings(record=True) as warned, caplog.at_level(logging.INFO):
        warnings.simplefilter("always")
        quiet_libraries()  # as the CLI does
        try:
            with pytest.raises(Interrupted, match="interrupted — continue with: distill train --resume .*last.ckpt"):
                train(two_sources, tmp_path / "run", TrainConfig(**(TINY | {"epochs": 2})), show_progress=False)
        finally:
            signal.signal(signal.SIGINT, handler)
        assert torch.load(last, weights_only=True)["global_step"] == 2  # where it stood, not the last epoch's end
        summary = resume_run(last, show_progress=False)
    said = [str(w.message) for w in warned] + [r.getMessage() for r in caplog.records]
    assert not [m for m in said if "weights_only" in m or "Previous log files" in m], said
    assert (tmp_path / "run" / "student.pt").is_file() and summary["best_val_agreement"] is not None
    assert torch.load(last, weights_only=True)["global_step"] > 2  # continued from there, in the same file
    assert not list(last.parent.glob("last-v*.ckpt"))


def test_a_run_refused_after_its_folder_was_made_leaves_no_folder(tmp_path, two_sources):
    from distill.commands import train as command
    from distill.workspace import Workspace

    ws = Workspace(tmp_path / "w")
    with pytest.raises(DistillError, match="'ce' needs a labelled face store"):
        command.run(ws, [two_sources[0][1]], TrainConfig(loss="ce", **TINY), show_progress=False)
    assert not ws.dir("run").exists() or not list(ws.dir("run").iterdir())


def test_a_resume_interrupted_again_keeps_the_epochs_before_it(tmp_path, two_sources, monkeypatch):
    import csv
    import signal

    from distill.errors import Interrupted
    from distill.training.distill_module import DistillModule
    from distill.training.train import resume_run

    real, interrupts = DistillModule.training_step, []

    def step(self, batch, index):
        if self.current_epoch == 1 and len(interrupts) < 2:  # once in the run, once more in its first resume
            interrupts.append(self.global_step)
            raise KeyboardInterrupt
        return real(self, batch, index)

    def logged_epochs() -> set[int]:
        with open(tmp_path / "run" / "logs" / "metrics.csv", newline="") as f:
            return {int(r["epoch"]) for r in csv.DictReader(f) if r.get("val/agreement")}

    monkeypatch.setattr(DistillModule, "training_step", step)
    handler = signal.getsignal(signal.SIGINT)
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    try:
        with pytest.raises(Interrupted):
            train(two_sources, tmp_path / "run", TrainConfig(**(TINY | {"epochs": 3})), show_progress=False)
        assert logged_epochs() == {0}
        with pytest.raises(Interrupted):  # Lightning's logger deletes metrics.csv as a resume starts
            resume_run(last, show_progress=False)
    finally:
        signal.signal(signal.SIGINT, handler)
    assert len(interrupts) == 2 and logged_epochs() == {0}
    resume_run(last, show_progress=False)
    assert logged_epochs() == {0, 1, 2} and not list((tmp_path / "run" / "logs").glob("metrics-*.csv"))


def test_a_resume_killed_before_it_put_the_earlier_epochs_back_loses_none_of_them(tmp_path):
    from distill.training.trainer import prepend_epochs, set_aside_earlier_epochs

    metrics = tmp_path / "metrics.csv"
    aside = tmp_path / "metrics-before-resume.csv"
    aside.write_text("epoch,step,val/agreement\n0,9,0.5\n1,19,0.6\n")  # set aside by the first resume, then SIGKILL
    metrics.write_text("epoch,step,val/agreement\n1,19,0.61\n2,29,0.7\n")  # what that killed resume had logged
    assert set_aside_earlier_epochs(metrics) == aside and not metrics.exists()
    metrics.write_text("epoch,step,val/agreement\n3,39,0.8\n")  # the next resume's epochs
    prepend_epochs(metrics, aside)
    assert metrics.read_text().splitlines()[1:] == ["0,9,0.5", "1,19,0.61", "2,29,0.7", "3,39,0.8"]
    assert not aside.exists()


def test_a_hint_layer_the_teacher_lacks_is_a_user_error_naming_its_layers():
    from distill.students.model import Student
    from distill.teachers.build import build_teacher
    from distill.training.distill_module import DistillModule

    student = Student("squeezenet1_1_bn", ["a", "b", "c", "d", "e", "f", "g"], 32, grey=True)
    cfg = TrainConfig(loss="hint", hint_layer="nosuch", **TINY)
    with pytest.raises(DistillError, match=r"--hint-layer nosuch: the teacher has no such module; its convolutions: "):
        DistillModule(student, cfg, teacher=build_teacher("mini_xception"))


def test_a_loss_that_is_not_finite_stops_the_run_with_one_line_and_no_student(tmp_path, two_sources, monkeypatch):
    from distill.training.distill_module import DistillModule

    real = DistillModule.training_step

    def diverged(self, batch, index):
        loss = real(self, batch, index)
        return loss * float("nan") if self.global_step >= 2 else loss

    monkeypatch.setattr(DistillModule, "training_step", diverged)
    with pytest.raises(DistillError, match=r"the training loss is not a finite number at step 3 \(epoch 1\)"):
        train(two_sources, tmp_path / "run", TrainConfig(**TINY), show_progress=False)
    assert not (tmp_path / "run" / "student.pt").exists() and not (tmp_path / "run" / "summary.json").exists()


def test_progressive_side_grows_from_the_first_quarter_to_the_last():
    sides = [progressive_side(64, 112, epoch, 30) for epoch in range(30)]
    assert sides[:8] == [64] * 8 and sides[-7:] == [112] * 7  # epochs 0-7: under 25%; 22-29: past 75%
    assert sides == sorted(sides) and all(s % 8 == 0 for s in sides) and len(set(sides)) > 4
    assert progressive_side(64, 100, 29, 30) == 100  # the full side exactly, even off the 8 px grid
    assert progressive_side(112, 112, 0, 30) == progressive_side(64, 112, 0, 1) == 112  # off; a single epoch


def _sides_seen(monkeypatch) -> list[tuple[str, int]]:
    """(stage, the student's input side) of every step DistillModule takes from now on."""
    from distill.training.distill_module import DistillModule

    seen, step = [], DistillModule.shared_step

    def recording(self, batch, stage):
        seen.append((stage, self.student.preprocess.size))
        return step(self, batch, stage)

    monkeypatch.setattr(DistillModule, "shared_step", recording)
    return seen


def test_progressive_resizing_trains_small_first_and_validates_and_saves_at_the_full_side(
    tmp_path, two_sources, monkeypatch
):
    seen = _sides_seen(monkeypatch)
    cfg = TrainConfig(**(TINY | {"epochs": 4, "size": 48, "start_size": 32, "online_teacher": True}))
    train(two_sources, tmp_path, cfg, show_progress=False)
    trained = [side for stage, side in seen if stage == "train"]
    assert trained[0] == 32 and trained[-1] == 48 and trained == sorted(trained)
    assert {side for stage, side in seen if stage == "val"} == {48}
    assert load_student(tmp_path / "student.pt").preprocess.size == 48
    assert json.loads((tmp_path / "config.json").read_text())["train"]["start_size"] == 32


def test_a_fine_tune_stays_at_the_full_side(tmp_path, two_sources, monkeypatch):
    seen = _sides_seen(monkeypatch)
    student = Student("squeezenet1_1_bn", PosteriorCache(two_sources[0][1]).classes, 48, grey=True, crop=0.8)
    cfg = TrainConfig(**(TINY | {"epochs": 3, "size": 48, "start_size": 32}))
    fine_tune(student, two_sources, tmp_path, cfg, None, False)
    assert {side for _, side in seen} == {48}


@pytest.mark.parametrize(
    ("runtime", "loss", "in_onnx"), [("onnx", "kld", True), ("torch", "kld", False), ("onnx", "kld+hint", False)]
)
def test_the_online_teacher_runs_where_teacher_runtime_says_and_hints_keep_pytorch(two_sources, runtime, loss, in_onnx):
    from distill.teachers.graphs import OnnxNet
    from distill.training.train import build_module, make_data

    cfg = TrainConfig(**(TINY | {"online_teacher": True, "teacher_runtime": runtime, "loss": loss}))
    cfg, _ = resolve(cfg, [PosteriorCache(c) for _, c in two_sources])
    data = make_data(two_sources, cfg)
    student = Student(cfg.student, data.classes, cfg.size, cfg.grey, crop=cfg.framing)
    module = build_module(cfg, data, student)
    assert isinstance(module.teacher.net, OnnxNet) is in_onnx


def test_a_run_saved_before_progressive_resizing_goes_on_at_its_own_side():
    from distill.training.train import run_train_config

    older = {"train": {"student": "squeezenet1_1_bn", "size": 112, "epochs": 60}}  # no start_size yet
    assert run_train_config(older).start_size == 112
    assert run_train_config({"train": older["train"] | {"start_size": 64}}).start_size == 64
