"""Multi-process runs on Lightning (DDP: gloo on CPU, NCCL on GPU) for `distill label` and `distill train`.

Lightning launches the extra local processes itself by re-running the same command line (strategy "ddp"), or
they are started outside (torchrun, SLURM). Every process must then agree on where the run's files go, which is
what `shared_run_name` settles."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from distill.errors import DistillError

RUN_DIR_ENV = "DISTILL_RUN_DIR"  # set by rank 0 before Lightning re-runs the command for ranks 1..N-1
_JOB_ID_VARS = ("SLURM_JOB_ID", "TORCHELASTIC_RUN_ID", "LSB_JOBID", "PBS_JOBID")


def parse_devices(devices: str | int) -> int | str | list[int]:
    """'2' -> 2, 'auto' -> 'auto', '0,2' -> [0, 2] (Lightning's forms); anything else is refused."""
    text = str(devices).strip()
    if text.isdigit() and int(text) >= 1:
        return int(text)
    if text == "auto" or text == "-1":
        return text if text == "auto" else -1
    ids = [d.strip() for d in text.split(",") if d.strip()]
    if "," in text and ids and all(d.isdigit() for d in ids):
        return [int(d) for d in ids]
    raise DistillError(f"--devices {devices}: must be a count >= 1, 'auto', -1 (all) or device ids like '0,2'")


def world_size_from_env() -> int:
    """Processes in the job as its launcher (torchrun, SLURM) announced them; 1 when run by hand."""
    return int(os.environ.get("WORLD_SIZE") or os.environ.get("SLURM_NTASKS") or 1)


def shared_run_name() -> str | None:
    """Folder every rank of a job uses, or None for a plain single process (which picks a fresh one).

    Ranks Lightning starts inherit rank 0's folder through RUN_DIR_ENV; ranks started by torchrun or SLURM all
    derive it from the job id."""
    if os.environ.get(RUN_DIR_ENV):
        return os.environ[RUN_DIR_ENV]
    if world_size_from_env() <= 1:
        return None
    job = next((os.environ[v] for v in _JOB_ID_VARS if os.environ.get(v) not in (None, "", "none")), None)
    if job is None and os.environ.get("MASTER_PORT"):  # torchrun without --rdzv-id: the rendezvous is shared
        job = f"{os.environ.get('MASTER_ADDR', 'localhost')}-{os.environ['MASTER_PORT']}"
    return f"job{job}" if job else None


@contextlib.contextmanager
def announce_run_dir(run_dir: Path) -> Iterator[None]:
    """Ranks that Lightning starts inside this block inherit `run_dir`; undone afterwards, so a later run in
    the same Python process gets its own folder."""
    before = os.environ.get(RUN_DIR_ENV)
    os.environ[RUN_DIR_ENV] = str(run_dir)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(RUN_DIR_ENV, None)
        else:
            os.environ[RUN_DIR_ENV] = before


def is_global_zero() -> bool:
    """Whether this process is rank 0 of its job (or alone): the one that prints and writes shared files."""
    from lightning.fabric.utilities.rank_zero import rank_zero_only

    return getattr(rank_zero_only, "rank", 0) == 0


def per_process_batch(global_batch: int, world_size: int) -> int:
    """Each process's share of the batch, so N processes step like one with the same --batch-size."""
    if global_batch % world_size:
        raise DistillError(f"--batch-size {global_batch} does not split evenly over {world_size} processes")
    return global_batch // world_size
