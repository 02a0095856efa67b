"""Torch files as the toolkit reads them: weights only (never unpickled code), a state that must fit its network,
and parameters counted once."""

from __future__ import annotations

from pathlib import Path

from distill.errors import DistillError
from distill.fileio import require_content


def read_torch_file(path: Path):
    """torch.load with weights_only=True (never unpickle code from a file), any failure a one-line error."""
    import torch

    if not path.is_file():
        raise DistillError(f"{path}: no such file")
    require_content(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - torch raises many types for foreign or unsafe files
        raise DistillError(f"{path} is not a safe torch file ({str(err).splitlines()[0]})") from err


def fit_state(net, state: dict, path: Path, arch: str) -> None:
    """net.load_state_dict(state), a mismatch a one-line error naming the file and the architecture."""
    try:
        net.load_state_dict(state)
    except RuntimeError as err:
        raise DistillError(f"{path} does not fit {arch}: {str(err).splitlines()[0]}") from err


def parameter_count(model) -> int:
    """Distinct parameters: one tensor reachable under two names counts once (a torch.export graph lifts the
    student's `net` and its `_features` view of it as two parameters over one storage); an ONNX graph counts the
    values of its weights."""
    if hasattr(model, "parameter_count"):
        return model.parameter_count()
    storages = {(p.untyped_storage().data_ptr(), p.storage_offset(), p.shape): p for p in model.parameters()}
    return sum(p.numel() for p in storages.values())
