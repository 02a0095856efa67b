"""The TF.js weights reader on manifests written here, and face-api's net as setup fetched it."""

import json

import numpy as np
import pytest
import torch

from distill.errors import DistillError
from distill.teachers.tfjs import read_manifest
from tests.conftest import requires_face_api


def _write(tmp_path, entries: list[tuple[dict, bytes]], shards: int = 2):
    """A manifest of `entries` (metadata, bytes) whose concatenated bytes are split over `shards` files."""
    data = b"".join(raw for _, raw in entries)
    cut = len(data) // shards
    pieces = [data[i * cut : (i + 1) * cut if i < shards - 1 else None] for i in range(shards)]
    for i, piece in enumerate(pieces):
        (tmp_path / f"w{i}.bin").write_bytes(piece)
    manifest = tmp_path / "m-weights_manifest.json"
    group = {"paths": [f"w{i}.bin" for i in range(shards)], "weights": [meta for meta, _ in entries]}
    manifest.write_text(json.dumps([group]))
    return manifest


def test_quantised_half_and_raw_entries_are_read_in_order(tmp_path):
    q = np.array([0, 1, 255, 128, 7, 9], np.uint8)
    half = np.array([0.5, -2.0], np.float16)
    raw = np.arange(3, dtype="<f4")
    entries = [
        (
            {
                "name": "a",
                "shape": [2, 3],
                "dtype": "float32",
                "quantization": {"dtype": "uint8", "scale": 0.5, "min": -1},
            },
            q.tobytes(),
        ),
        ({"name": "h", "shape": [2], "dtype": "float32", "quantization": {"dtype": "float16"}}, half.tobytes()),
        ({"name": "b", "shape": [3], "dtype": "float32"}, raw.tobytes()),
    ]
    weights = read_manifest(_write(tmp_path, entries))
    np.testing.assert_allclose(weights["a"], (q.astype(np.float32) * 0.5 - 1).reshape(2, 3))
    np.testing.assert_allclose(weights["h"], [0.5, -2.0])
    np.testing.assert_array_equal(weights["b"], raw)
    assert all(w.dtype == np.float32 for w in weights.values())


def test_truncated_shards_and_unknown_dtypes_are_refused(tmp_path):
    entry = ({"name": "b", "shape": [4], "dtype": "float32"}, np.zeros(3, "<f4").tobytes())
    with pytest.raises(DistillError, match="the shards end inside weight b"):
        read_manifest(_write(tmp_path, [entry], shards=1))
    odd = ({"name": "c", "shape": [1], "dtype": "complex64"}, b"\0" * 8)
    with pytest.raises(DistillError, match="unsupported dtype complex64"):
        read_manifest(_write(tmp_path, [odd], shards=1))


def test_a_missing_folder_says_how_to_get_the_files(tmp_path):
    from distill.teachers.build import build_teacher

    with pytest.raises(DistillError, match="run `make setup`.*--teacher face_api:DIR"):
        build_teacher(f"face_api:{tmp_path}")


@requires_face_api
def test_face_api_is_the_released_net():
    from distill.teachers.build import build_teacher

    teacher = build_teacher("face_api")
    assert teacher.classes == ["neutral", "happiness", "sadness", "anger", "fear", "disgust", "surprise"]
    assert (teacher.preprocess.size, teacher.preprocess.grey) == (112, False)
    assert sum(p.numel() for p in teacher.parameters()) == 323_687  # 0.32 M, as the package says
    probs = teacher(torch.rand(2, 3, 112, 112)).softmax(1)
    assert probs.shape == (2, 7) and torch.allclose(probs.sum(1), torch.ones(2))
