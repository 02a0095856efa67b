"""The compressed-model file (`model.distill`): encoded layers + the rest of the state, loadable with
`torch.load(weights_only=True)`; its size on disk is the compressed size (bit-packed signs, int8, ...)."""

from __future__ import annotations

import io
import zlib
from pathlib import Path

import torch
from torch import nn

from distill.compress.factory import make_compressor
from distill.errors import DistillError
from distill.storage.files import atomic_path
from distill.storage.torch_files import fit_state
from distill.students.model import Student

KIND = "compressed_student"
MAGIC = b"DISTILLZ1"  # then a zlib-compressed torch archive (files before it are plain archives)


def save_compressed(path: Path, student: Student, layers: dict[str, str], extra: dict | None = None) -> None:
    """student: plain (un-parametrised) weights equal to the compressed ones; layers: {layer name: method}."""
    state = dict(student.net.state_dict())
    encoded = {}
    for name, method in layers.items():
        encoded[name] = {"method": method, **make_compressor(method).encode_layer(state, name)}
    payload = {
        "kind": KIND,
        "format_version": 1,
        "student": student.arch_kwargs,
        "layers": encoded,
        "state": state,
        **(extra or {}),
    }
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    with atomic_path(path) as tmp:
        # zlib over the torch archive: a compressed student is hundreds of small tensors, and the archive's
        # per-tensor headers and 64-byte alignment would otherwise weigh as much as the weights themselves
        tmp.write_bytes(MAGIC + zlib.compress(buffer.getvalue(), 9))


def load_compressed(path: Path | str) -> Student:
    """A runnable Student whose weights are the decoded compressed ones (identical outputs)."""
    path = Path(path)
    if path.is_dir():
        path = path / "model.distill"
    try:
        raw = path.read_bytes()
        source = io.BytesIO(zlib.decompress(raw[len(MAGIC) :])) if raw.startswith(MAGIC) else io.BytesIO(raw)
        blob = torch.load(source, map_location="cpu", weights_only=True)
    except FileNotFoundError as err:
        raise DistillError(f"compressed model {path} not found") from err
    except Exception as err:  # noqa: BLE001 - torch raises many types for bad/unsafe files
        raise DistillError(f"{path} is not a safe distill compressed model ({str(err).splitlines()[0]})") from err
    if not isinstance(blob, dict) or blob.get("kind") != KIND:
        raise DistillError(f"{path} is not a distill compressed model")
    student = Student(**blob["student"])
    state = dict(blob["state"])
    for name, layer in blob["layers"].items():
        compressor = make_compressor(layer["method"])
        compressor.restructure(student.net, [name], layer)
        compressor.decode_layer(state, name, layer)
    fit_state(student.net, state, path, blob["student"]["arch"])
    student.spec = f"compressed:{path}"
    student.methods = sorted({layer["method"] for layer in blob["layers"].values()})
    return student.eval()


def strip_parametrizations(net: nn.Module) -> None:
    """Bake each parametrised weight (the compressed one) into a plain parameter."""
    from torch.nn.utils import parametrize

    for module in list(net.modules()):
        if parametrize.is_parametrized(module):
            for name in list(module.parametrizations):
                parametrize.remove_parametrizations(module, name, leave_parametrized=True)
