"""Compressors: exact encodings, straight-through fine-tuning, files whose bytes shrink, identical reloads."""

import json

import numpy as np
import pytest
import torch

from distill.compress.artifact import load_compressed, save_compressed, strip_parametrizations
from distill.compress.methods import BinaryWeights, Int8Weights
from distill.compress.pipeline import compress_run, wrap_chain
from distill.config import CompressConfig, LabelConfig, TrainConfig
from distill.errors import DistillError
from distill.label import label
from distill.students.model import Student
from distill.training.train import train


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


def test_int8_round_trip_is_exact_and_close_to_float():
    w = torch.randn(16, 8, 3, 3)
    q = Int8Weights()
    decoded = q.decode(q.encode(w))
    assert torch.equal(decoded, q.effective(w))
    assert (decoded - w).abs().max() <= w.abs().amax() / 127
    assert q.encode(w)["int8"].dtype == torch.int8


def test_straight_through_gradient_reaches_latent_weights():
    student = Student("squeezenet1_1_bn", ["a", "b"], size=32)
    wrap_chain(student.net, "bwn")
    student(torch.rand(2, 3, 32, 32)).sum().backward()
    latent = [p for n, p in student.net.named_parameters() if n.endswith("original")]
    assert latent and all(p.grad is not None and p.grad.abs().sum() > 0 for p in latent)


@pytest.mark.parametrize(
    ("methods", "max_size"),
    [
        ("bwn+quant", 1 / 8),
        ("xnor", 1 / 8),
        ("binact", 1.05),
        ("cp:0.05", 0.9),
        ("prune:0.8", 0.3),
        ("prune:0.8+quant", 0.15),
        ("hash", 0.2),
        ("prune-ch:0.5", 0.75),
        ("prune-ch:0.5+quant", 0.25),
        ("cp+bwn", 0.1),
        ("hybrid:0.9", 0.1),
    ],
)
def test_saved_file_reloads_with_identical_outputs(tmp_path, methods, max_size):
    torch.manual_seed(0)
    student = Student("squeezenet1_1_bn", ["a", "b", "c"], size=32)
    student.save(tmp_path / "float.pt")
    layers = wrap_chain(student.net, methods)
    student.train()(torch.rand(4, 3, 32, 32)).sum().backward()  # the wrapped net trains (BN stats move too)
    if methods == "bwn+quant":  # quant takes the first and last layers that bwn leaves float
        assert set(layers.values()) == {"bwn", "quant"}
    strip_parametrizations(student.net)
    save_compressed(tmp_path / "m.distill", student.eval(), layers)
    loaded = load_compressed(tmp_path / "m.distill")
    x = torch.rand(3, 3, 32, 32)
    with torch.inference_mode():
        np.testing.assert_allclose(loaded(x).numpy(), student(x).numpy(), rtol=1e-5, atol=1e-6)
    assert (tmp_path / "m.distill").stat().st_size < (tmp_path / "float.pt").stat().st_size * max_size


def test_xnor_binarises_the_inputs_of_its_layers():
    student = Student("squeezenet1_1_bn", ["a", "b"], size=32).eval()
    layers = wrap_chain(student.net, "xnor")
    seen = []
    name = next(iter(layers))
    conv = student.net.get_submodule(f"{name}.conv")
    conv.register_forward_hook(lambda _m, inputs, _o: seen.append(inputs[0]))
    student(torch.rand(2, 3, 32, 32))
    x = seen[0]
    k = x.abs().amax(1, keepdim=True)  # sign(x) * K: every channel at a position has the same magnitude
    assert torch.allclose(x.abs(), k.expand_as(x))


def test_compress_a_run_with_fine_tuning(tmp_path, face_store, monkeypatch):
    import distill.evaluate.speed as speed

    cache = tmp_path / "cache.h5"
    label(face_store, cache, LabelConfig(views=2), show_progress=False)
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
    from distill.compress.pipeline import _float_teacher

    torch.manual_seed(0)
    student = Student("squeezenet1_1_bn", ["a", "b", "c"], size=32, grey=True).eval()
    teacher = _float_teacher(student, tmp_path, "float").train()  # stays in eval mode
    x = torch.rand(2, 3, 32, 32)
    assert torch.equal(teacher(x), student(x)) and not teacher.training
    assert not any(p.requires_grad for p in teacher.parameters())
    wrap_chain(student.net, "bwn")  # compressing the student leaves its teacher as it was
    assert not torch.equal(teacher(x), student(x))
    assert _float_teacher(student, tmp_path, "cache") is None
    assert not (tmp_path / "bad" / "rounds").exists()


def model_classes(run):
    return Student(**torch.load(run / "student.pt", weights_only=True)["arch_kwargs"]).classes


def test_cp_layers_approximate_the_conv_they_replace():
    from distill.compress.methods import CPConv, CPDecomposition

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
    layers = wrap_chain(student.net, "cp-fast:0.25", size=32)
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
        wrap_chain(Student("squeezenet1_1_bn", ["a", "b"], size=32).net, "cp-fast", size=32)


@pytest.mark.parametrize("stride,padding", [(1, 1), (2, 0), (2, 1)])
def test_cp_inference_fuses_the_depthwise_pair_exactly(stride, padding):
    from distill.compress.methods import CPConv

    torch.manual_seed(0)
    layer = CPConv(torch.nn.Conv2d(6, 10, 3, stride=stride, padding=padding), 5)
    x = torch.randn(2, 6, 11, 11)
    factored = layer.train()(x)  # the four factors, as fine-tuning runs them
    fused = layer.eval()(x)  # 1x1 -> one 3x3 depthwise with outer-product kernels -> 1x1
    torch.testing.assert_close(fused, factored, rtol=1e-5, atol=1e-5)
    layer.set_form(merged=True)  # one full 3x3 conv I->R with kernels in x outer(h, w) -> 1x1
    torch.testing.assert_close(layer(x), factored, rtol=1e-5, atol=1e-5)


def test_low_rank_fc_is_the_truncated_svd_and_reloads_after_hybrid(tmp_path):
    from distill.compress.methods import LowRankFC, LowRankLinear

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
        wrap_chain(Student("squeezenet1_1_bn", ["a", "b"], size=32).net, "svd")
    # Ge et al.'s pipeline on a VGG-S: low-rank FC layers, whose factors hybrid then prunes, shares and codes
    student = Student("vgg_s", ["a", "b", "c"], size=32, width=0.05)
    student.save(tmp_path / "float.pt")
    layers = wrap_chain(student.net, "svd+hybrid")
    assert set(layers.values()) == {"svd", "hybrid"} and "classifier.4.0" in layers
    strip_parametrizations(student.net)
    save_compressed(tmp_path / "m.distill", student.eval(), layers)
    faces = torch.rand(2, 3, 32, 32)
    with torch.inference_mode():
        torch.testing.assert_close(load_compressed(tmp_path / "m.distill")(faces), student(faces))
    assert (tmp_path / "m.distill").stat().st_size < (tmp_path / "float.pt").stat().st_size / 10


def test_prune_zeroes_the_smallest_weights_on_a_cubic_schedule():
    from distill.compress.methods import MagnitudePruning

    prune = MagnitudePruning(0.75)
    w = torch.arange(1.0, 9.0).view(2, 4) * torch.tensor([1.0, -1.0, 1.0, -1.0])
    prune.advance(None, 3, 3)
    assert torch.equal(prune.effective(w), w * (w.abs() > 6))  # 6 of 8 smallest |w| gone
    prune.advance(None, 1, 3)
    assert prune.now == pytest.approx(0.75 * (1 - (2 / 3) ** 3))
    blob = prune.encode(MagnitudePruning(0.75).effective(torch.randn(64, 32)))
    assert blob["sparse_values"].numel() == 64 * 32 // 4 and blob["mask"].numel() == 64 * 32 // 8


def test_hashed_layer_reads_its_weights_from_one_eighth_as_many_buckets():
    student = Student("squeezenet1_1_bn", ["a", "b"], size=32)
    layers = wrap_chain(student.net, "hash")
    name = next(iter(layers))
    layer = student.net.get_submodule(name)
    hashed = layer.parametrizations.weight[0]
    assert hashed.buckets.numel() == round(layer.weight.numel() / 8)
    assert torch.equal(layer.weight, hashed.buckets[hashed.idx] * hashed.sign)
    student(torch.rand(2, 3, 32, 32)).sum().backward()
    assert hashed.buckets.grad.abs().sum() > 0 and layer.parametrizations.weight.original.grad is None


def test_channel_pruning_removes_channels_and_must_come_first():
    student = Student("squeezenet1_1_bn", ["a", "b"], size=32)
    widths = [m.out_channels for m in student.net.modules() if isinstance(m, torch.nn.Conv2d)]
    wrap_chain(student.net, "prune-ch:0.5")
    pruned = [m.out_channels for m in student.net.modules() if isinstance(m, torch.nn.Conv2d)]
    assert pruned[-1] == widths[-1] == 2  # the classifier keeps its classes
    assert all(p <= w - w // 2 + 1 for p, w in zip(pruned[:-1], widths[:-1], strict=True))
    assert student(torch.rand(2, 3, 32, 32)).shape == (2, 2)
    with pytest.raises(DistillError, match="must come first"):
        wrap_chain(Student("squeezenet1_1_bn", ["a", "b"], size=32).net, "quant+prune-ch")


def test_hybrid_shares_few_values_per_layer_and_huffman_codes_them():
    from distill.compress.methods import Hybrid, huffman, kmeans_1d, unhuffman

    symbols = torch.tensor([0, 0, 0, 0, 0, 0, 1, 2, 0, 3])
    coded = huffman("x", symbols)
    assert torch.equal(unhuffman("x", coded), symbols) and coded["x_bytes"].numel() < symbols.numel()
    values = torch.cat([torch.full((50,), -1.0), torch.full((30,), 0.5), torch.full((20,), 2.0)])
    assert torch.allclose(kmeans_1d(values + 0.01 * torch.randn(100), 3), torch.tensor([-1.0, 0.5, 2.0]), atol=0.01)
    student = Student("squeezenet1_1_bn", ["a", "b"], size=32)
    hybrid = Hybrid(0.9)
    layers = wrap_chain(student.net, "hybrid:0.9")  # all rounds: pruned, then shared
    w = student.net.get_submodule(list(layers)[3]).weight
    assert (w == 0).float().mean() == pytest.approx(0.9, abs=0.01)
    assert torch.unique(w).numel() <= 2**hybrid.bits + 1  # the codebook and the pruned zeros
    blob = hybrid.encode(w)
    assert torch.equal(hybrid.decode(blob), w)
