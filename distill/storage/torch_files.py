"""Torch files as the toolkit reads them: weights only (never unpickled code), a state that must fit its network,
and parameters counted once."""

from __future__ import annotations

import logging
import pickle
import re
import warnings
import zipfile
from contextlib import contextmanager
from pathlib import Path

from distill.errors import DistillError
from distill.storage.files import require_content


def read_torch_file(path: Path):
    """torch.load with weights_only=True (never unpickle code from a file), any failure a one-line error."""
    import torch

    if not path.is_file():
        raise DistillError(f"{path}: no such file")
    require_content(path)
    try:
        with torch_quiet():  # e.g. "Detected pickle protocol 4", printed before our line
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:  # torch's advice to unpickle it anyway is not ours to give
        detail = re.search(r"WeightsUnpickler error:\s*(.+)", str(err))
        reason = detail.group(1).strip() if detail else str(err).splitlines()[0]
        raise DistillError(
            f"{path} is not a safe torch file: torch's weights-only reader refused it ({reason}): not a checkpoint, "
            "or one holding objects beyond tensors and plain values; nothing is unpickled"
        ) from err
    except Exception as err:  # noqa: BLE001 - torch raises many types for foreign or unsafe files
        reason = str(err).splitlines()[0] if str(err).strip() else type(err).__name__
        reason = "neither a torch archive nor a pickle" if reason.isdigit() else reason  # a bad magic number
        raise DistillError(f"{path} is not a safe torch file ({reason})") from err


@contextmanager
def torch_quiet():
    """Torch's own warnings and logged tracebacks silenced while it reads a file: our one line says what is wrong
    (a junk .pt2 made torch.export print a 13-line traceback before it)."""
    loggers = [logging.getLogger(name) for name in ("torch.export", "torch._export", "torch.jit")]
    levels = [logger.level for logger in loggers]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for logger in loggers:
            logger.setLevel(logging.CRITICAL)
        try:
            yield
        finally:
            for logger, level in zip(loggers, levels, strict=True):
                logger.setLevel(level)


def read_archive(path: Path, kind: str, load):
    """load(path) for a torch archive (a torch.export program, a TorchScript file): a file that is no zip archive is
    refused before torch reads it, and any failure is a one-line error naming `kind`."""
    if not zipfile.is_zipfile(require_content(path)):
        raise DistillError(f"{path} is not a {kind} (not a zip archive)")
    try:
        with torch_quiet():
            return load(path)
    except Exception as err:  # noqa: BLE001 - torch raises many types for foreign files
        raise DistillError(f"{path} is not a {kind} ({str(err).splitlines()[0]})") from err


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
