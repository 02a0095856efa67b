"""A teacher's networks moved to ONNX Runtime for the training step (--teacher-runtime onnx): the same posteriors."""

import torch

import distill.teachers.runtime as runtime
from distill.export.formats import ONNX_TOLERANCE
from distill.teachers.build import build_teacher
from distill.teachers.graphs import OnnxNet


def _faces(n=5, side=72):
    torch.manual_seed(0)
    return torch.rand(n, 3, side, side)


def test_each_member_in_onnx_runtime_gives_the_same_posteriors_and_says_so():
    teacher = build_teacher("mini_xception+mini_xception?crop=0.9").eval()
    with torch.no_grad():
        before = teacher(_faces())
    note = runtime.in_onnx_runtime(teacher, threads=1)
    assert all(isinstance(member.net, OnnxNet) for member in teacher.members)
    assert note == "teacher mini_xception in ONNX Runtime; mini_xception?crop=0.9 in ONNX Runtime"
    with torch.no_grad():
        after = teacher(_faces())
    assert after.shape == before.shape and (after - before).abs().max() <= ONNX_TOLERANCE


def test_a_member_that_cannot_be_exported_stays_in_pytorch_and_the_note_says_why(monkeypatch):
    def refuse(member, path, threads):
        raise RuntimeError("an op the exporter cannot write\nmore lines")

    monkeypatch.setattr(runtime, "_session", refuse)
    teacher = build_teacher("mini_xception").eval()
    net = teacher.net
    note = runtime.in_onnx_runtime(teacher, threads=1)
    assert teacher.net is net and note == "teacher mini_xception in PyTorch (an op the exporter cannot write)"
