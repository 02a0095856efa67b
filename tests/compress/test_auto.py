"""compress_auto: the no-flag plan climbs the pruning ladder, scores each step on the held-out faces, keeps the best."""

import json

import numpy as np
import pytest

from distill.compress import auto
from distill.compress.distill_file import load_compressed
from distill.config import CompressConfig, LabelConfig, TrainConfig
from distill.errors import DistillError
from distill.labelling.label import label
from distill.training.train import train


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, face_store):
    root = tmp_path_factory.mktemp("auto")
    cache = root / "cache.h5"
    label(face_store, cache, LabelConfig(teacher="mini_xception", views=2), show_progress=False)
    run = root / "run"
    train(
        [(face_store, cache)],
        run,
        TrainConfig(epochs=1, batch_size=4, size=32, grey=True, workers=0),
        show_progress=False,
    )
    return run


@pytest.fixture
def short_ladder(monkeypatch):
    monkeypatch.setattr(auto, "LADDER_TOP", 0.4)
    monkeypatch.setattr(auto, "LADDER_STEPS", 2)


def test_a_lenient_tolerance_takes_the_top_of_the_ladder_in_int8(tiny_run, tmp_path, short_ladder):
    from distill.export.formats import OnnxModel, onnx_form

    out = tmp_path / "auto"
    summary = auto.compress_auto(tiny_run, out, CompressConfig(epochs=1, tolerance=100), show_progress=False)
    assert summary["plan"] == "prune-ch:0.4 + int8" and summary["curve"] == f"{out / 'summary.json'} (plan)"
    plan = json.loads((out / "summary.json").read_text())["plan"]
    assert plan["chosen"] == "prune-ch:0.4 + int8"
    # the float student itself, its int8 graph, then each step in float and in int8
    assert [c["name"] for c in plan["curve"]] == [
        "float",
        "int8",
        "prune-ch:0.2",
        "prune-ch:0.2 + int8",
        "prune-ch:0.4",
        "prune-ch:0.4 + int8",
    ]
    assert plan["curve"][0]["float_agreement"] == 1.0
    assert summary["deployable"] == str(out / "model.int8.onnx") and summary["parameters"] < summary["float_parameters"]
    assert summary["size_ratio"] > 3 and summary["onnx_speedup_batch1"] > 0 and summary["onnx_speedup_batch64"] > 0
    model = load_compressed(out / "model.distill")
    assert sum(p.numel() for p in model.net.parameters()) == summary["parameters"]
    # predict and eval run the int8 graph the plan chose, not a float export of model.distill
    graph = onnx_form(model, tmp_path / "float.onnx", model_file=out / "model.distill")
    assert isinstance(graph, OnnxModel) and graph.meta["int8"] and graph.spec == f"onnx:{out / 'model.int8.onnx'}"


def test_no_passing_step_is_a_clear_error(tiny_run, tmp_path, short_ladder, monkeypatch):
    from distill.training.train import load_run_config

    source = load_run_config(tiny_run)["sources"][0]
    teacher = auto.held_out_faces([(source["store"], source["cache"])], 0.1).teacher
    calls = []

    def float_right_then_every_form_wrong(model, pixels):
        calls.append(1)
        return teacher if len(calls) == 1 else (teacher + 1) % 7

    monkeypatch.setattr(auto, "classes_of", float_right_then_every_form_wrong)
    with pytest.raises(DistillError, match=r"no compressed form of .* within 1 points .*closest: int8, 0.00%"):
        auto.compress_auto(tiny_run, tmp_path / "none", CompressConfig(epochs=0), show_progress=False)
    curve = json.loads((tmp_path / "none" / "summary.json").read_text())["curve"]  # what was measured is kept
    assert [c["name"] for c in curve] == ["float", "int8", "prune-ch:0.2", "prune-ch:0.2 + int8"]
    assert len(calls) == 4  # float, int8, then the first step's two forms: the ladder stops where float fails


def test_the_deployable_rank_prefers_int8_then_more_pruning():
    forms = [auto.Candidate(r, q, 1, 0.5, 0.5) for r in (0.0, 0.1, 0.2) for q in (False, True)]
    best = max(forms, key=auto._rank)
    assert (best.ratio, best.int8) == (0.2, True)
    assert auto._rank(auto.Candidate(0.0, True, 1, 0, 0)) > auto._rank(auto.Candidate(0.3, False, 1, 0, 0))


def test_held_out_faces_are_the_split_training_held_out(tiny_run):
    from distill.training.data import held_out
    from distill.training.train import load_run_config

    config = load_run_config(tiny_run)
    source = config["sources"][0]
    held = auto.held_out_faces([(source["store"], source["cache"])], 0.1)
    from distill.faces.store import FaceStore

    store = FaceStore(source["store"])
    assert len(held.pixels) == held_out(store.keys, 0.1).sum() == len(held.teacher)
    assert np.array_equal(held.pixels, store.pixels(np.flatnonzero(held_out(store.keys, 0.1))))
    assert len(held.calibration) == len(store) - len(held.pixels)  # all the training faces: fewer than 512


class _Anything:
    def eval(self):
        return self


def test_a_student_no_better_than_the_commonest_class_is_warned_about(tmp_path, monkeypatch):
    teacher = np.array([2] * 6 + [0, 1, 3, 4])  # 60% "neutral"-like class 2
    held = auto.HeldOut(np.zeros((10, 8, 8, 3), np.uint8), teacher, np.zeros((1, 8, 8, 3), np.uint8))
    classes = ["anger", "happiness", "neutral", "sadness", "surprise"]
    monkeypatch.setattr(auto, "classes_of", lambda model, pixels: np.full(10, 2))  # always the commonest
    warning = auto.Ladder(_Anything(), held, 1.0, tmp_path).collapse_warning(classes)
    assert warning.startswith("the student agrees with its teacher on 60.00% of 10 held-out faces")
    assert "commonest class 'neutral' (60.00%; it answers 1 class in all)" in warning
    monkeypatch.setattr(auto, "classes_of", lambda model, pixels: teacher)  # learnt: agrees on every face
    assert auto.Ladder(_Anything(), held, 1.0, tmp_path).collapse_warning(classes) is None


def test_a_steps_line_names_the_fine_tuning_epoch_it_kept():
    pair = [auto.Candidate(0.6, False, 1000, 0.5862, 1.0), auto.Candidate(0.6, True, 1000, 0.5862, 1.0)]
    line = auto._line(pair, {"best_val_agreement": 0.5862})
    assert line.startswith("auto: prune-ch:0.6 (kept: the fine-tuning epoch of best val/agreement, 0.5862): 1,000")
    assert "(kept" not in auto._line(pair, None)  # no fine-tuning (--epochs 0): nothing kept but the step itself
