"""Every registered student runs forward and backward; timm students start with small logits."""

import pytest
import torch

from distill.registry import STUDENTS
from distill.students.model import Student


@pytest.mark.parametrize("arch", STUDENTS.names())
@pytest.mark.parametrize(("grey", "small"), [(False, False), (True, True)])
def test_every_student_runs_forward_and_backward(arch, grey, small):
    student = Student(arch, ["a", "b", "c"], size=32, grey=grey, small_input=small)
    x = torch.rand(2, 3, 48, 48)
    logits, feats = student.forward_with_features(x)
    assert logits.shape == (2, 3) and feats.ndim == 4
    logits.sum().backward()
    assert all(p.grad is not None for p in student.parameters() if p.requires_grad)
    assert torch.allclose(student.eval()(x), student.eval().forward_with_features(x)[0], atol=1e-5)


@pytest.mark.parametrize("arch", ["mobilenetv2_100", "mobilenetv3_small_100", "mobilenetv3_large_100"])
def test_timm_students_start_with_small_logits(arch):
    """A few-class head from timm's init starts at logits of several units; ours starts near uniform posteriors."""
    torch.manual_seed(0)
    student = Student(arch, list("abcdefg"), size=64, grey=True, small_input=True).train()  # batch statistics
    head = student.net.get_classifier()
    assert head.weight.std().item() == pytest.approx(0.01, rel=0.2) and not head.bias.any()
    with torch.no_grad():
        logits = student(torch.rand(8, 3, 64, 64))
    assert logits.abs().max().item() < 0.5  # timm's own init: about 2


@pytest.mark.parametrize("arch", ["squeezenet1_1_bn", "mobilenetv3_small_100"])
def test_the_inference_form_gives_the_same_logits(arch):
    torch.manual_seed(0)
    student = Student(arch, list("abcdefg"), 32, grey=True)
    student.train()
    student(torch.rand(8, 3, 32, 32))  # BatchNorm statistics that are not the initial ones
    student.eval()
    x = torch.rand(4, 3, 32, 32)
    with torch.no_grad():
        eager = student(x)
        fast = student.for_inference()(x)
    torch.testing.assert_close(fast, eager, rtol=1e-4, atol=1e-4)
    assert student.memory_format == torch.channels_last
    if arch == "squeezenet1_1_bn":
        assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in student.net.modules())  # folded
