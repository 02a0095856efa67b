"""The Keras HDF5 graph builder against hand-computed references (numpy), on files written with h5py."""

import numpy as np
import pytest
import torch

from distill.errors import DistillError
from distill.teachers.keras import load_keras
from tests.conftest import keras_layer as L
from tests.conftest import write_keras

INPUT = L("InputLayer", "in", [], batch_input_shape=[None, 4, 4, 2])


def _run(path, x_nhwc):
    net, shape = load_keras(path, logits=False)
    with torch.no_grad():
        out = net(torch.from_numpy(x_nhwc).permute(0, 3, 1, 2))
    return out.numpy(), shape


def _x(rng, h=4, w=4, c=2):
    return rng.standard_normal((1, h, w, c)).astype(np.float32)


def test_conv2d_kernel_layout_matches_cross_correlation(tmp_path):
    rng = np.random.default_rng(0)
    k, b = rng.standard_normal((3, 3, 2, 5)).astype(np.float32), rng.standard_normal(5).astype(np.float32)
    layers = [
        INPUT,
        L(
            "Conv2D",
            "c",
            ["in"],
            filters=5,
            kernel_size=[3, 3],
            strides=[1, 1],
            padding="valid",
            activation="linear",
            use_bias=True,
        ),
    ]
    path = write_keras(tmp_path / "m.h5", layers, {"c": {"kernel": k, "bias": b}}, [["in", 0, 0]], [["c", 0, 0]])
    x = _x(rng)
    out, shape = _run(path, x)
    ref = np.einsum("yxc,yxco->o", x[0, 0:3, 0:3], k) + b  # output pixel (0, 0)
    assert shape == (4, 4, 2)
    np.testing.assert_allclose(out[0, :, 0, 0], ref, rtol=1e-5, atol=1e-5)


def test_same_max_pooling_pads_bottom_right_first(tmp_path):
    layers = [
        L("InputLayer", "in", [], batch_input_shape=[None, 4, 4, 1]),
        L("MaxPooling2D", "p", ["in"], pool_size=[3, 3], strides=[2, 2], padding="same"),
    ]
    path = write_keras(tmp_path / "m.h5", layers, {}, [["in", 0, 0]], [["p", 0, 0]])
    x = np.arange(16, dtype=np.float32).reshape(1, 4, 4, 1)
    out, _ = _run(path, x)
    # TF: total pad 1, all of it at the bottom/right -> window (0..2, 0..2) for output (0, 0)
    np.testing.assert_array_equal(out[0, 0], [[10, 11], [14, 15]])


def test_separable_conv_depthwise_order_and_same_padding(tmp_path):
    rng = np.random.default_rng(1)
    dw = rng.standard_normal((3, 3, 2, 2)).astype(np.float32)  # depth multiplier 2
    pw = rng.standard_normal((1, 1, 4, 3)).astype(np.float32)
    layers = [
        INPUT,
        L(
            "SeparableConv2D",
            "s",
            ["in"],
            filters=3,
            kernel_size=[3, 3],
            strides=[1, 1],
            padding="same",
            depth_multiplier=2,
            activation="relu",
            use_bias=False,
        ),
    ]
    path = write_keras(
        tmp_path / "m.h5",
        layers,
        {"s": {"depthwise_kernel": dw, "pointwise_kernel": pw}},
        [["in", 0, 0]],
        [["s", 0, 0]],
    )
    x = _x(rng)
    out, _ = _run(path, x)
    padded = np.pad(x[0], ((1, 1), (1, 1), (0, 0)))
    depth = np.einsum("yxc,yxcm->cm", padded[1:4, 1:4], dw).reshape(4)  # output pixel (1, 1); channel c*2+m
    ref = np.maximum(depth @ pw[0, 0], 0)
    np.testing.assert_allclose(out[0, :, 1, 1], ref, rtol=1e-5, atol=1e-5)


def test_flatten_dense_bn_add_softmax_stripped(tmp_path):
    rng = np.random.default_rng(2)
    dense_k = rng.standard_normal((32, 3)).astype(np.float32)
    bn = {k: rng.uniform(0.5, 1.5, 2).astype(np.float32) for k in ("gamma", "beta", "moving_mean", "moving_variance")}
    layers = [
        INPUT,
        L("BatchNormalization", "bn", ["in"], axis=-1, epsilon=0.01),
        L("Add", "add", ["in", "bn"]),
        L("Flatten", "f", ["add"]),
        L("Dense", "d", ["f"], units=3, activation="softmax", use_bias=False),
    ]
    path = write_keras(tmp_path / "m.h5", layers, {"bn": bn, "d": {"kernel": dense_k}}, [["in", 0, 0]], [["d", 0, 0]])
    x = _x(rng)
    normed = (x - bn["moving_mean"]) / np.sqrt(bn["moving_variance"] + 0.01) * bn["gamma"] + bn["beta"]
    logits_ref = (x + normed).reshape(1, -1) @ dense_k  # Keras flattens channels-last
    net, _ = load_keras(path)  # logits=True strips the output softmax
    with torch.no_grad():
        logits = net(torch.from_numpy(x).permute(0, 3, 1, 2)).numpy()
    np.testing.assert_allclose(logits, logits_ref, rtol=1e-4, atol=1e-4)


def test_sequential_model(tmp_path):
    k = np.ones((1, 1, 2, 1), np.float32)
    layers = [
        L(
            "Conv2D",
            "c",
            [],
            filters=1,
            kernel_size=[1, 1],
            strides=[1, 1],
            padding="valid",
            activation="linear",
            use_bias=False,
            batch_input_shape=[None, 4, 4, 2],
        ),
        L("GlobalAveragePooling2D", "g", []),
    ]
    path = write_keras(tmp_path / "m.h5", layers, {"c": {"kernel": k}}, None, None, sequential=True)
    x = np.ones((1, 4, 4, 2), np.float32)
    out, shape = _run(path, x)
    assert shape == (4, 4, 2) and out.tolist() == [[2.0]]


def test_unsupported_layer_is_named(tmp_path):
    layers = [INPUT, L("LSTM", "rnn_1", ["in"])]
    path = write_keras(tmp_path / "m.h5", layers, {}, [["in", 0, 0]], [["rnn_1", 0, 0]])
    with pytest.raises(DistillError, match="'rnn_1' has unsupported class LSTM"):
        load_keras(path)


def test_weights_only_file_is_refused(tmp_path):
    import h5py

    with h5py.File(tmp_path / "w.h5", "w") as f:
        f.create_group("conv")
    with pytest.raises(DistillError, match="weights only"):
        load_keras(tmp_path / "w.h5")
