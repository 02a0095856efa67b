"""Shared fixtures: tiny generated images and Keras files; ../shared real data only where present."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
from PIL import Image

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
CROWD_CLIP = SHARED / "data" / "videos" / "people-1080p.mp4"  # a real crowd clip, for predict's tests
requires_shared = pytest.mark.skipif(not (SHARED / "data").is_dir(), reason="../shared real data not present")


def _face_api_missing() -> str | None:
    from distill.teachers.assets import DEFAULT_DIR, PACKAGE, is_release

    if is_release(DEFAULT_DIR):
        return None
    return f"face_api's weights are not in {DEFAULT_DIR}: `make setup` fetches {PACKAGE} with npm (npm missing?)"


requires_face_api = pytest.mark.skipif(_face_api_missing() is not None, reason=_face_api_missing() or "")


@pytest.fixture(scope="session")
def face_photos(tmp_path_factory) -> Path:
    """A few real faces (scikit-image's astronaut and LFW subset, shipped with the package) as JPEG files."""
    from distill.datasets.demo import demo_samples

    root = tmp_path_factory.mktemp("photos")
    for s in demo_samples(root)[:13]:
        Image.fromarray(s.pixels).save(root / f"{s.key}.jpg", quality=95)
    return root


@pytest.fixture(scope="session")
def face_store(tmp_path_factory, face_photos) -> Path:
    from distill.config import CropConfig
    from distill.faces.crop import crop

    store = tmp_path_factory.mktemp("ws") / "faces" / "photos.h5"
    crop(face_photos, store, CropConfig(size=64), show_progress=False)
    return store


def write_keras(
    path: Path, layers: list[dict], weights: dict[str, dict[str, np.ndarray]], inputs, outputs, sequential: bool = False
) -> Path:
    """A Keras-2-style HDF5 model file written with h5py (no TensorFlow)."""
    with h5py.File(path, "w") as f:
        body = layers if sequential else {"layers": layers, "input_layers": inputs, "output_layers": outputs}
        f.attrs["model_config"] = json.dumps({"class_name": "Sequential" if sequential else "Model", "config": body})
        f.attrs["keras_version"] = "2.0.5"
        g = f.create_group("model_weights")
        for layer in layers:
            lg = g.create_group(layer["name"])
            names = [f"{layer['name']}/{k}:0" for k in weights.get(layer["name"], {})]
            lg.attrs["weight_names"] = np.array([n.encode() for n in names])
            for k, v in weights.get(layer["name"], {}).items():
                lg.create_dataset(f"{layer['name']}/{k}:0", data=v)
    return path


def keras_layer(cls: str, name: str, inbound: list[str], **config) -> dict:
    return {
        "class_name": cls,
        "name": name,
        "config": {"name": name, **config},
        "inbound_nodes": [[[n, 0, 0, {}] for n in inbound]] if inbound else [],
    }
