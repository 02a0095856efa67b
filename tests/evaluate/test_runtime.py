"""`eval --runtime`: a student is scored by ONNX Runtime (predict's runtime) or eager PyTorch, to the same scores."""

import numpy as np
import pytest
import torch

from distill.evaluate.evalset import EvalSet
from distill.evaluate.evaluate import evaluate_model
from distill.students.model import Student
from distill.teachers.build import build_teacher


@pytest.fixture(scope="module")
def evalset():
    rng = np.random.default_rng(0)
    labels = ["anger", "happiness", "neutral"] * 4
    return EvalSet([f"k{i}" for i in range(12)], rng.integers(0, 256, (12, 40, 40, 3), np.uint8), labels, {}, 12)


def test_a_student_scores_the_same_in_both_runtimes_and_says_which_ran(evalset):
    pytest.importorskip("onnxruntime")
    torch.manual_seed(0)
    student = Student("squeezenet1_1_bn", ["anger", "happiness", "neutral"], size=32, grey=True).eval()
    onnx = evaluate_model("s", student, evalset, None, None, 40, runtime="onnx")
    eager = evaluate_model("s", student, evalset, None, None, 40, runtime="torch")
    assert (onnx["runtime"], eager["runtime"]) == ("onnxruntime", "torch")
    assert onnx["scores"]["predictions"] == eager["scores"]["predictions"]
    for result in (onnx, eager):  # both runtimes are timed whichever scored
        assert result["facts"]["onnx_latency_ms_batch1"] > 0 and result["facts"]["cpu_latency_ms_batch1"] > 0


def test_a_teacher_runs_in_pytorch_whatever_the_runtime(evalset):
    teacher = build_teacher("mini_xception?crop=1")
    result = evaluate_model("mini_xception", teacher, evalset, None, None, 40, runtime="onnx")
    assert result["runtime"] == "torch" and "onnx_latency_ms_batch1" not in result["facts"]


def test_a_graph_that_differs_from_its_model_is_never_used(tmp_path, monkeypatch):
    import distill.export.formats as export

    def differing(module, out, fmt, size, calibration=None):
        out.write_bytes(b"graph")
        return {"max_abs_diff_vs_model": 0.5}

    monkeypatch.setattr(export, "export_model", differing)
    note = export.onnx_form(torch.nn.Identity(), tmp_path / "m.onnx")
    assert isinstance(note, str) and "differs" in note and not (tmp_path / "m.onnx").exists()
