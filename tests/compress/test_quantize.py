"""int8, HashedNets and hybrid weight sharing with Huffman codes."""

import pytest
import torch

from distill.compress.pipeline import wrap_chain
from distill.compress.quantize import Int8Weights
from distill.specs import CompressPlan
from distill.students.model import Student


def test_int8_round_trip_is_exact_and_close_to_float():
    w = torch.randn(16, 8, 3, 3)
    q = Int8Weights()
    decoded = q.decode(q.encode(w))
    assert torch.equal(decoded, q.effective(w))
    assert (decoded - w).abs().max() <= w.abs().amax() / 127
    assert q.encode(w)["int8"].dtype == torch.int8


def test_hashed_layer_reads_its_weights_from_one_eighth_as_many_buckets():
    student = Student("squeezenet1_1_bn", ["a", "b"], size=32)
    layers = wrap_chain(student.net, CompressPlan.parse("hash"))
    name = next(iter(layers))
    layer = student.net.get_submodule(name)
    hashed = layer.parametrizations.weight[0]
    assert hashed.buckets.numel() == round(layer.weight.numel() / 8)
    assert torch.equal(layer.weight, hashed.buckets[hashed.idx] * hashed.sign)
    student(torch.rand(2, 3, 32, 32)).sum().backward()
    assert hashed.buckets.grad.abs().sum() > 0 and layer.parametrizations.weight.original.grad is None


def test_hybrid_shares_few_values_per_layer_and_huffman_codes_them():
    from distill.compress.encoding import huffman, unhuffman
    from distill.compress.quantize import Hybrid, kmeans_1d

    symbols = torch.tensor([0, 0, 0, 0, 0, 0, 1, 2, 0, 3])
    coded = huffman("x", symbols)
    assert torch.equal(unhuffman("x", coded), symbols) and coded["x_bytes"].numel() < symbols.numel()
    values = torch.cat([torch.full((50,), -1.0), torch.full((30,), 0.5), torch.full((20,), 2.0)])
    assert torch.allclose(kmeans_1d(values + 0.01 * torch.randn(100), 3), torch.tensor([-1.0, 0.5, 2.0]), atol=0.01)
    student = Student("squeezenet1_1_bn", ["a", "b"], size=32)
    hybrid = Hybrid(0.9)
    layers = wrap_chain(student.net, CompressPlan.parse("hybrid:0.9"))  # all rounds: pruned, then shared
    w = student.net.get_submodule(list(layers)[3]).weight
    assert (w == 0).float().mean() == pytest.approx(0.9, abs=0.01)
    assert torch.unique(w).numel() <= 2**hybrid.bits + 1  # the codebook and the pruned zeros
    blob = hybrid.encode(w)
    assert torch.equal(hybrid.decode(blob), w)
