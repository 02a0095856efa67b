"""`distill compress`: the newest run (or the one given) compressed into a new folder of the workspace."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from distill.compress.pipeline import compress_run, compressed_name, unfinished
from distill.config import AUTO, CompressConfig
from distill.errors import DistillError, Interrupted
from distill.storage.locks import exclusive, held
from distill.workspace import Workspace, safe_name


def run(ws: Workspace, model: Path | None, cfg: CompressConfig, show_progress: bool = True) -> dict:
    """The run given (its folder or its student.pt) or the newest one, into a new folder of
    compressed/, made only once the run has been checked."""
    run = model or ws.newest("run").parent
    run = run.parent if run.is_file() else run
    if not run.exists():
        raise DistillError(f"{run}: no such run folder or file")
    if not (run / "student.pt").is_file():
        raise DistillError(f"{run} is not a training run with a student.pt")
    _tidy_unfinished(ws.root / "compressed", run.name, compressed_name(run.name, cfg.method))
    try:
        with (
            ws.new_run("compressed", compressed_name(run.name, cfg.method)) as out_dir,
            exclusive(out_dir / "model.distill", "compress"),
        ):  # the lock tells a compress at work from one killed before its end (_tidy_unfinished)
            if cfg.method == AUTO:
                from distill.compress.auto import compress_auto

                return compress_auto(run, out_dir, cfg, show_progress)
            return compress_run(run, out_dir, cfg, show_progress)
    except Interrupted:
        raise Interrupted("interrupted — compress keeps no half-made model; run the same command again") from None


def _tidy_unfinished(folder: Path, run_name: str, name: str) -> None:
    """Earlier compresses of this run that stopped before they made a model: one of the same methods is removed
    (this one redoes its work), others are named and kept; one still at work (its lock held) is left alone."""
    from distill.progress import console

    for other in unfinished(folder, run_name):
        same = re.fullmatch(rf"\d{{8}}-\d{{6}}-{re.escape(safe_name(name))}(-\d+)?", other.name)
        if held(other / "model.distill"):
            note = f"another compress of this run is at work in {other.resolve()}; this one goes on beside it"
        elif same:
            shutil.rmtree(other)
            note = (
                f"removed {other.resolve()}: an earlier compress of this run with these methods, killed before it "
                "made a model; this one redoes it"
            )
        else:
            note = (
                f"an earlier compress of this run stopped before it made a model: {other.resolve()} (another "
                "method's; kept, delete it when done)"
            )
        console.print(note, highlight=False)
