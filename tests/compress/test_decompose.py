"""CP and SVD factorisations: approximations, the fused inference forms, cp-fast's choice."""

import numpy as np
import pytest
import torch

from distill.compress.distill_file import load_compressed, save_compressed, strip_parametrizations
from distill.compress.pipeline import wrap_chain
from distill.errors import DistillError
from distill.specs import CompressPlan
from distill.students.model import Student


def test_cp_layers_approximate_the_conv_they_replace():
    from distill.compress.decompose import CPConv, CPDecomposition

    torch.manual_seed(0)
    conv = torch.nn.Conv2d(8, 12, 3, padding=1)
    # a weight of CP rank 4 is recovered exactly at rank 4
    a, b, c, d = torch.randn(12, 4), torch.randn(8, 4), torch.randn(3, 4), torch.randn(3, 4)
    with torch.no_grad():
        conv.weight.copy_(torch.einsum("or,ir,hr,wr->oihw", a, b, c, d))
    x = torch.randn(2, 8, 9, 9)
    for lean in (False, True):  # tensorly's ALS, and the tap-by-tap one used for big layers
        layer = CPConv(conv, 4)
        layer.load_factors(conv, n_iter_max=2000, tol=1e-12, lean=lean)
        np.testing.assert_allclose(layer(x).detach().numpy(), conv(x).detach().numpy(), rtol=1e-3, atol=1e-3)
    assert CPDecomposition(0.5).rank_for(conv) == int(0.5 * 12 * 8 * 9 / (8 + 3 + 3 + 12))


def test_cp_fast_takes_only_the_layers_its_timings_find_faster(tmp_path, monkeypatch):
    """The selection follows the measurement (mocked here: timings belong in benchmarks), each layer timed on the
    input it sees at the working size; the file it leaves reloads like any CP model."""
    import distill.evaluate.speed as speed

    student = Student("squeezenet1_1_bn", ["a", "b"], size=32)
    slow = {"features.3.expand3x3.0", "features.9.expand3x3.0"}  # CP would slow these two down
    merged = {"features.12.expand3x3.0"}  # and this one is fastest with its first 1x1 folded in
    seen = {}

    def fake_timing(models, x, rounds, per_round):
        name = next(n for n, m in student.net.named_modules() if m is models["conv"])
        seen[name] = tuple(x.shape)
        return {"conv": 1.0, "depthwise": 1.2 if name in slow else 0.5, "merged": 0.4 if name in merged else 1.3}

    monkeypatch.setattr(speed, "compare_latency_on", fake_timing)
    layers = wrap_chain(student.net, CompressPlan.parse("cp-fast:0.25"), size=32)
    every_3x3 = list(seen)
    assert len(every_3x3) == 8 and set(layers) == set(every_3x3) - slow
    assert seen["features.3.expand3x3.0"] == (1, 16, 7, 7)  # fire2's squeezed input at 32 px
    save_compressed(tmp_path / "m.distill", student.eval(), layers)
    loaded = load_compressed(tmp_path / "m.distill")
    assert {n for n in layers if loaded.net.get_submodule(n).merge} == merged  # the form travels with the file
    x = torch.rand(2, 3, 32, 32)
    with torch.inference_mode():
        np.testing.assert_allclose(loaded(x), student(x), rtol=1e-5, atol=1e-6)
    even = {"conv": 1.0, "depthwise": 1.0, "merged": 1.0}
    monkeypatch.setattr(speed, "compare_latency_on", lambda models, x, rounds, per_round: even)
    with pytest.raises(DistillError, match="none of the 8 k x k convs runs faster"):
        wrap_chain(Student("squeezenet1_1_bn", ["a", "b"], size=32).net, CompressPlan.parse("cp-fast"), size=32)


@pytest.mark.parametrize("stride,padding", [(1, 1), (2, 0), (2, 1)])
def test_cp_inference_fuses_the_depthwise_pair_exactly(stride, padding):
    from distill.compress.decompose import CPConv

    torch.manual_seed(0)
    layer = CPConv(torch.nn.Conv2d(6, 10, 3, stride=stride, padding=padding), 5)
    x = torch.randn(2, 6, 11, 11)
    factored = layer.train()(x)  # the four factors, as fine-tuning runs them
    fused = layer.eval()(x)  # 1x1 -> one 3x3 depthwise with outer-product kernels -> 1x1
    torch.testing.assert_close(fused, factored, rtol=1e-5, atol=1e-5)
    layer.set_form(merged=True)  # one full 3x3 conv I->R with kernels in x outer(h, w) -> 1x1
    torch.testing.assert_close(layer(x), factored, rtol=1e-5, atol=1e-5)


def test_low_rank_fc_is_the_truncated_svd_and_reloads_after_hybrid(tmp_path):
    from distill.compress.decompose import LowRankFC, LowRankLinear

    torch.manual_seed(0)
    linear = torch.nn.Linear(20, 12)
    with torch.no_grad():  # a weight of rank 3 is recovered exactly at rank 3, and the bias is kept
        linear.weight.copy_(torch.randn(12, 3) @ torch.randn(3, 20))
    layer = LowRankLinear(linear, 3)
    layer.load_factors(linear)
    x = torch.randn(5, 20)
    torch.testing.assert_close(layer(x), linear(x), rtol=1e-5, atol=1e-5)
    assert LowRankFC(0.25).rank_for(linear) == int(0.25 * 20 * 12 / 32)
    with pytest.raises(DistillError, match="'svd' finds no layer"):  # SqueezeNet has no linear layer
        wrap_chain(Student("squeezenet1_1_bn", ["a", "b"], size=32).net, CompressPlan.parse("svd"))
    # Ge et al.'s pipeline on a VGG-S: low-rank FC layers, whose factors hybrid then prunes, shares and codes
    student = Student("vgg_s", ["a", "b", "c"], size=32, width=0.05)
    student.save(tmp_path / "float.pt")
    layers = wrap_chain(student.net, CompressPlan.parse("svd+hybrid"))
    assert set(layers.values()) == {"svd", "hybrid"} and "classifier.4.0" in layers
    strip_parametrizations(student.net)
    save_compressed(tmp_path / "m.distill", student.eval(), layers)
    faces = torch.rand(2, 3, 32, 32)
    with torch.inference_mode():
        torch.testing.assert_close(load_compressed(tmp_path / "m.distill")(faces), student(faces))
    assert (tmp_path / "m.distill").stat().st_size < (tmp_path / "float.pt").stat().st_size / 10
