"""Binary compressors: BWN signs and scales, incremental BWN, XNOR inputs, straight-through."""

import torch

from distill.compress.binary import BinaryWeights
from distill.compress.pipeline import wrap_chain
from distill.specs import CompressPlan
from distill.students.model import Student


def test_bwn_is_sign_times_mean_abs_per_filter_and_packs_8_weights_a_byte():
    w = torch.tensor([[1.0, -2.0, 0.0], [3.0, -4.0, 5.0]])
    expected = torch.tensor([[1.0, -1.0, 1.0], [4.0, -4.0, 4.0]])
    bwn = BinaryWeights()
    assert torch.equal(bwn.effective(w), expected)
    blob = bwn.encode(w)
    assert blob["bits"].numel() == 1 and torch.equal(bwn.decode(blob), expected)
    big = torch.randn(64, 32, 3, 3)
    assert bwn.encode(big)["bits"].numel() == big.numel() // 8


def test_incremental_bwn_binarises_the_largest_weights_first():
    w = torch.tensor([[1.0, -2.0, 3.0, -6.0]])  # alpha = 3
    bwn = BinaryWeights()
    bwn.advance(None, 1, 2)  # round 1 of 2: the larger half is binarised, the rest stays float
    assert torch.equal(bwn.effective(w), torch.tensor([[1.0, -2.0, 3.0, -3.0]]))
    bwn.advance(None, 2, 2)
    assert torch.equal(bwn.effective(w), torch.tensor([[3.0, -3.0, 3.0, -3.0]]))


def test_straight_through_gradient_reaches_latent_weights():
    student = Student("squeezenet1_1_bn", ["a", "b"], size=32)
    wrap_chain(student.net, CompressPlan.parse("bwn"))
    student(torch.rand(2, 3, 32, 32)).sum().backward()
    latent = [p for n, p in student.net.named_parameters() if n.endswith("original")]
    assert latent and all(p.grad is not None and p.grad.abs().sum() > 0 for p in latent)


def test_xnor_binarises_the_inputs_of_its_layers():
    student = Student("squeezenet1_1_bn", ["a", "b"], size=32).eval()
    layers = wrap_chain(student.net, CompressPlan.parse("xnor"))
    seen = []
    name = next(iter(layers))
    conv = student.net.get_submodule(f"{name}.conv")
    conv.register_forward_hook(lambda _m, inputs, _o: seen.append(inputs[0]))
    student(torch.rand(2, 3, 32, 32))
    x = seen[0]
    k = x.abs().amax(1, keepdim=True)  # sign(x) * K: every channel at a position has the same magnitude
    assert torch.allclose(x.abs(), k.expand_as(x))
