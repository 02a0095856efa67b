"""compress_run: a trained run compressed, fine-tuned from its caches, timed from the files."""

import json

import pytest
import torch

from distill.compress.distill_file import load_compressed
from distill.compress.pipeline import compress_run, wrap_chain
from distill.config import CompressConfig, LabelConfig, TrainConfig
from distill.errors import DistillError
from distill.labelling.label import label
from distill.specs import CompressPlan
from distill.students.model import Student
from distill.training.train import train


def test_compress_a_run_with_fine_tuning(tmp_path, face_store, monkeypatch):
    import distill.evaluate.speed as speed

    cache = tmp_path / "cache.h5"
    label(face_store, cache, LabelConfig(teacher="mini_xception", views=2), show_progress=False)
    run = tmp_path / "run"
    cfg = TrainConfig(epochs=1, batch_size=4, size=32, grey=True, workers=0)
    train([(face_store, cache)], run, cfg, show_progress=False)
    timed = {}
    monkeypatch.setattr(
        speed, "compare_latency", lambda models, size, rounds: timed.update(models) or {"float": 2.0, "compressed": 1.0}
    )
    summary = compress_run(
        run, tmp_path / "bwn", CompressConfig("bwn", epochs=1, lr=1e-4, ema=0.9), show_progress=False
    )
    assert summary["compressed_layers_ratio"] > 20 and summary["size_ratio"] > 1
    # the latencies are those of the files a user runs: the float student and the model.distill, reloaded
    assert (summary["float_cpu_latency_ms_batch1"], summary["cpu_latency_ms_batch1"]) == (2.0, 1.0)
    assert timed["compressed"].spec == f"compressed:{tmp_path / 'bwn' / 'model.distill'}"
    assert not timed["float"].training and not timed["compressed"].training
    bwn_round = json.loads((tmp_path / "bwn" / "rounds" / "01-bwn-1of1" / "config.json").read_text())
    assert bwn_round["train"]["ema"] == 0.9  # the weight average also runs over binarised (parametrised) layers
    chain = compress_run(run, tmp_path / "pq", CompressConfig("prune-ch:0.3+quant", 1, 2, 1e-4), show_progress=False)
    assert [(r["method"], r["round"]) for r in chain["rounds"]] == [
        ("prune-ch:0.3", 1),
        ("prune-ch:0.3", 2),
        ("quant", 1),
    ]
    assert chain["parameters"] < chain["float_parameters"] and chain["size_ratio"] > 4
    assert load_compressed(tmp_path / "pq").classes == model_classes(run)
    model = load_compressed(tmp_path / "bwn")
    assert model.classes == model_classes(run)
    with pytest.raises(DistillError, match="not a distill compressed model"):
        load_compressed(run / "student.pt")
    with pytest.raises(DistillError, match="'svd' finds no layer"):  # checked before bwn's fine-tuning starts
        compress_run(run, tmp_path / "bad", CompressConfig("bwn+svd", 1, lr=1e-4), show_progress=False)
    selfish = compress_run(
        run, tmp_path / "self", CompressConfig("bwn", 1, lr=1e-4, teach="float"), show_progress=False
    )
    assert selfish["fine_tuned_on"] == "the float student's outputs" and selfish["compressed_layers_ratio"] > 20
    round_cfg = json.loads((tmp_path / "self" / "rounds" / "01-bwn-1of1" / "config.json").read_text())
    assert round_cfg["train"]["online_teacher"] is True  # the float student labels each fresh view
    with pytest.raises(DistillError, match="--teach vgg: must be one of cache, float"):
        CompressConfig("bwn", teach="vgg")
    with pytest.raises(DistillError, match=r"--ema 1.0: must be in \[0, 1\)"):
        CompressConfig("bwn", ema=1.0)


def test_float_teacher_is_a_frozen_eval_mode_copy_of_the_student(tmp_path):
    from distill.compress.pipeline import float_teacher

    torch.manual_seed(0)
    student = Student("squeezenet1_1_bn", ["a", "b", "c"], size=32, grey=True).eval()
    teacher = float_teacher(student, tmp_path, "float").train()  # stays in eval mode
    x = torch.rand(2, 3, 32, 32)
    assert torch.equal(teacher(x), student(x)) and not teacher.training
    assert not any(p.requires_grad for p in teacher.parameters())
    wrap_chain(student.net, CompressPlan.parse("bwn"))  # compressing the student leaves its teacher as it was
    assert not torch.equal(teacher(x), student(x))
    assert float_teacher(student, tmp_path, "cache") is None
    assert not (tmp_path / "bad" / "rounds").exists()


def model_classes(run):
    return Student(**torch.load(run / "student.pt", weights_only=True)["arch_kwargs"]).classes


def test_each_method_runs_its_recipe_unless_the_user_sets_a_value():
    from distill.compress.pipeline import FALLBACK_RECIPE, method_recipe

    assert method_recipe("bwn", CompressConfig("bwn")) == {"epochs": 10, "lr": 1e-3, "stages": None}
    assert method_recipe("prune-ch:0.5", CompressConfig("prune-ch:0.5")) == {"epochs": 20, "lr": 1e-3, "stages": 1}
    assert method_recipe("bwn", CompressConfig("bwn", epochs=2)) == {"epochs": 2, "lr": 1e-3, "stages": None}
    assert method_recipe("binact", CompressConfig("binact")) == FALLBACK_RECIPE  # never measured: the fallback
