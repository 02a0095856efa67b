"""`distill label`: a teacher's posteriors of the newest face store (or of a store or photo folder given) cached in
the workspace."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from distill.commands import crop
from distill.config import DistConfig, LabelConfig
from distill.distributed import is_global_zero
from distill.errors import DistillError
from distill.faces.store import require_store
from distill.labelling.label import default_cache_path, label, resolved_label
from distill.specs import TeacherSpec
from distill.workspace import Workspace


def run(
    ws: Workspace,
    src: Path | None,
    out: Path | None,
    cfg: LabelConfig,
    fresh: bool = False,
    dist: DistConfig | None = None,
    announce=None,
) -> dict:
    """The store given, the newest of workspace `ws`, or a photo folder cropped first (its
    summary goes to `announce`), into `out` or the default cache path of the store, teacher and views."""
    typed = cfg.teacher  # the cache is named after the spec as typed
    if cfg.teacher is not None:
        TeacherSpec.parse(cfg.teacher)  # a bad spec is refused before a crop of many minutes
        cfg = replace(cfg, teacher=ws.pin_fitted(cfg.teacher))
        if src is not None and src.is_dir():  # so is a teacher that cannot be built (no fitted weights, a bad file)
            from distill.teachers.build import build_teacher

            build_teacher(cfg.teacher, cfg.combine, cfg.class_map)
    if src is None:
        store = ws.newest("faces")
    elif src.is_dir():
        cropped = crop.run(ws, src, None)
        if announce is not None:
            announce("crop summary", cropped)
        store = Path(cropped["store"])
    elif not src.exists():
        raise DistillError(f"{src}: no such face store or folder")
    else:
        store = src
    cfg, notes = resolved_label(cfg, len(require_store(store)))
    if notes and is_global_zero():
        from distill.progress import console

        console.print("settings: " + "; ".join(notes), highlight=False)
    cache = out or default_cache_path(ws.root, store, typed or cfg.teacher, cfg.views, cfg.combine, cfg.class_map)
    return label(store, cache, cfg, fresh=fresh, dist=dist)
