"""`distill export`: the newest model of the workspace (or the one given) as a checked graph beside it."""

from __future__ import annotations

from pathlib import Path

from distill.artifacts import load_model
from distill.config import ExportConfig
from distill.errors import DistillError
from distill.export import export_model, exported_path
from distill.faces.store import require_store
from distill.workspace import Workspace


def run(
    ws: Workspace, model: Path | None, cfg: ExportConfig, calibrate: Path | None = None, out: Path | None = None
) -> dict:
    """The model given or the workspace's newest student or compressed model, as cfg (an
    ExportConfig) says, beside the model unless `out` is given; int8 calibrates on `calibrate` (default: the
    newest face store)."""
    module, file = load_model(str(model or ws.newest_model()))
    if not hasattr(module, "arch_kwargs"):
        raise DistillError(f"{file or model} is not a student or compressed model (teachers are exported from code)")
    fmt = cfg.resolved_format()
    calibration = None
    if cfg.int8:
        store = require_store(calibrate or ws.newest("faces"))
        calibration = store.pixels(slice(0, min(cfg.faces, len(store))))
    out_path = out or exported_path(file, cfg)
    return export_model(module, out_path, fmt, calibration)
