"""`distill compress`: the newest run (or the one given) compressed into a new folder of the workspace."""

from __future__ import annotations

from pathlib import Path

from distill.compress.pipeline import compress_run, compressed_name, unfinished
from distill.config import AUTO, CompressConfig
from distill.errors import DistillError, Interrupted
from distill.workspace import Workspace


def run(ws: Workspace, model: Path | None, cfg: CompressConfig, show_progress: bool = True) -> dict:
    """The run given (its folder or its student.pt) or the newest one, into a new folder of
    compressed/, made only once the run has been checked."""
    run = model or ws.newest("run").parent
    run = run.parent if run.is_file() else run
    if not run.exists():
        raise DistillError(f"{run}: no such run folder or file")
    if not (run / "student.pt").is_file():
        raise DistillError(f"{run} is not a training run with a student.pt")
    for dead in unfinished(ws.root / "compressed", run.name):
        from distill.progress import console

        console.print(
            f"an earlier compress of this run stopped before it made a model: {dead.resolve()} (its rounds "
            "kept for a look; delete it when done); this one starts afresh in a new folder",
            highlight=False,
        )
    try:
        with ws.new_run("compressed", compressed_name(run.name, cfg.method)) as out_dir:
            if cfg.method == AUTO:
                from distill.compress.auto import compress_auto

                return compress_auto(run, out_dir, cfg, show_progress)
            return compress_run(run, out_dir, cfg, show_progress)
    except Interrupted:
        raise Interrupted("interrupted — compress keeps no half-made model; run the same command again") from None
