"""`distill export`: the newest model of the workspace (or the one given) as a checked graph beside it."""

from __future__ import annotations

from pathlib import Path

from distill.artifacts import load_model
from distill.config import ExportConfig
from distill.errors import DistillError
from distill.export.formats import export_model, exported_path
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
    out_path = out or exported_path(file, cfg)
    if out is None:
        _not_compress_choice(out_path)
    if out is not None and out.suffix != f".{fmt}":
        raise DistillError(f"--out {out}: the {fmt} file must end in .{fmt}")
    calibration, calibrated = None, {}
    if cfg.int8:
        store = require_store(calibrate or ws.newest("faces"))
        calibration = store.pixels(slice(0, min(cfg.faces, len(store))))
        calibrated = {"calibrated_on": f"{len(calibration)} faces of {store.path.resolve()}"}
        if len(calibration) < cfg.faces:
            calibrated["note"] = f"{cfg.faces} calibration faces asked for, the store has {len(calibration)}"
    return export_model(module, out_path, fmt, calibration) | calibrated


def _not_compress_choice(path: Path) -> None:
    """Refuse to overwrite the int8 graph `distill compress` chose and validated (its summary names it)."""
    summary = path.parent / "summary.json"
    if path.exists() and summary.is_file() and path.name in summary.read_text():
        raise DistillError(
            f"{path} is the graph `distill compress` chose and validated ({summary}); give --out to write another"
        )
