"""`distill train`: a student from the workspace's newest cache (or the caches given), or a run resumed."""

from __future__ import annotations

from pathlib import Path

from distill.config import TrainConfig
from distill.labelling.cache import PosteriorCache
from distill.training.train import resume_run, run_name, train
from distill.workspace import Workspace


def run(
    ws: Workspace, caches: list[Path], cfg: TrainConfig, resume: Path | None = None, show_progress: bool = True
) -> dict:
    """Continue a run from a checkpoint, or train on the caches (default: the newest of the
    workspace) in a new run folder, made only once every input has been checked."""
    if resume is not None:
        return resume_run(resume, show_progress)
    chosen = [PosteriorCache(path) for path in caches or [ws.newest("cache")]]
    sources = [(ws.store_of(cache), cache.path) for cache in chosen]
    with ws.new_run("run", run_name(cfg)) as run_dir:
        return train(sources, run_dir, cfg, show_progress=show_progress)
