"""model.distill files of every compressor reload with identical outputs and shrink."""

import numpy as np
import pytest
import torch

from distill.compress.distill_file import load_compressed, save_compressed, strip_parametrizations
from distill.compress.pipeline import wrap_chain
from distill.specs import CompressPlan
from distill.students.model import Student

RELOADS = [
    ("bwn+quant", 1 / 8),
    ("xnor", 1 / 8),
    ("binact", 1.05),
    ("cp:0.05", 0.9),
    ("prune:0.8", 0.3),
    ("prune:0.8+quant", 0.15),
    ("hash", 0.2),
    ("prune-ch:0.5", 0.75),
    ("prune-ch:0.5+quant", 0.25),
    ("cp:0.05+bwn", 0.1),  # a low rank keeps the CP fit short; the chain is what this row tests
    ("hybrid:0.9", 0.1),
]


def test_the_reload_table_covers_every_compressor():
    from distill.registry import COMPRESSORS

    tried = {part.split(":")[0] for methods, _ in RELOADS for part in methods.split("+")}
    # cp-fast keeps only layers it times faster (tests/compress/test_decompose.py); SqueezeNet has no FC for svd
    assert tried | {"cp-fast", "svd"} == set(COMPRESSORS.names())


@pytest.mark.parametrize(("methods", "max_size"), RELOADS)
def test_saved_file_reloads_with_identical_outputs(tmp_path, methods, max_size):
    torch.manual_seed(0)
    student = Student("squeezenet1_1_bn", ["a", "b", "c"], size=32)
    student.save(tmp_path / "float.pt")
    layers = wrap_chain(student.net, CompressPlan.parse(methods))
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
