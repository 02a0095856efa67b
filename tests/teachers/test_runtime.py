"""A teacher's networks moved to ONNX Runtime for the training step: the same posteriors, the faster runtime kept."""

import torch

import distill.teachers.runtime as runtime
from distill.export import ONNX_TOLERANCE
from distill.teachers.graphs import OnnxNet
from distill.teachers.spec import build_teacher


def _faces(n=5, side=72):
    torch.manual_seed(0)
    return torch.rand(n, 3, side, side)


def test_forced_onnx_runtime_gives_the_same_posteriors_and_says_so():
    teacher = build_teacher("mini_xception").eval()
    with torch.no_grad():
        before = teacher(_faces())
    note = runtime.in_onnx_runtime(teacher, threads=1, force=True)
    assert isinstance(teacher.net, OnnxNet)
    assert note.startswith("teacher mini_xception in ONNX Runtime (") and "in PyTorch)" in note
    with torch.no_grad():
        after = teacher(_faces())
    assert after.shape == before.shape and (after - before).abs().max() <= ONNX_TOLERANCE


def test_each_member_keeps_the_runtime_that_computes_its_batch_faster(monkeypatch):
    teacher = build_teacher("mini_xception+mini_xception?crop=0.9").eval()
    timings = iter([10.0, 50.0, 30.0, 20.0])  # member 0: PyTorch 10 ms, ONNX 50; member 1: PyTorch 30, ONNX 20
    monkeypatch.setattr(runtime, "_ms", lambda net, batch: next(timings))
    note = runtime.in_onnx_runtime(teacher, threads=1)
    first, second = teacher.members
    assert not isinstance(first.net, OnnxNet) and isinstance(second.net, OnnxNet)
    assert "mini_xception in PyTorch (50 ms a batch of 64 there, 10 in PyTorch)" in note
    assert "in ONNX Runtime (20 ms a batch of 64 there, 30 in PyTorch)" in note


def test_a_member_that_cannot_be_exported_stays_in_pytorch_and_the_note_says_why(monkeypatch):
    def refuse(member, path, threads):
        raise RuntimeError("an op the exporter cannot write\nmore lines")

    monkeypatch.setattr(runtime, "_session", refuse)
    teacher = build_teacher("mini_xception").eval()
    net = teacher.net
    note = runtime.in_onnx_runtime(teacher, threads=1, force=True)
    assert teacher.net is net and note == "teacher mini_xception in PyTorch (an op the exporter cannot write)"
