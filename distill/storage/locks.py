"""One writer per output: a second `crop` or `label` into the same file says who is at it, instead of racing.

Hand-written over fcntl because the holder must be named: filelock truncates the lock file on every attempt, so a
second process would wipe the note of who holds it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import platform
import sys
from collections.abc import Iterator
from pathlib import Path

from distill.errors import DistillError

_RANK_VARS = ("RANK", "LOCAL_RANK", "SLURM_PROCID")


def lock_path(output: Path) -> Path:
    return output.with_name(output.name + ".lock")


def _other_rank() -> bool:
    """A process of a multi-process job other than rank 0: its launcher already holds the lock."""
    return any(os.environ.get(v, "0") not in ("", "0") for v in _RANK_VARS)


@contextlib.contextmanager
def exclusive(output: Path, what: str) -> Iterator[None]:
    """Hold the lock of `output` for the block; refuse at once, naming the holder, when another process has it."""
    if _other_rank():
        yield
        return
    path = lock_path(output)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = _acquire(path, what, output)
    try:
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()} on {platform.node()}: {' '.join(['distill', *sys.argv[1:]])}\n")
        handle.flush()
        yield
    finally:
        path.unlink(missing_ok=True)
        handle.close()


def _acquire(path: Path, what: str, output: Path):
    for _ in range(20):  # the holder may remove the file between our open and our lock: then try the new file
        handle = open(path, "a+")  # noqa: SIM115 - held open for the lock's life
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise DistillError(
                f"{output} is being written by another {what} ({holder}); wait for it to finish"
            ) from None
        if path.exists() and os.stat(path).st_ino == os.fstat(handle.fileno()).st_ino:
            return handle
        handle.close()
    raise DistillError(f"could not lock {path}")  # pragma: no cover - 20 lost races in a row


def held(output: Path) -> bool:
    """Whether a live process holds the lock of `output` now (a lock file left by a killed one is not held)."""
    path = lock_path(output)
    if not path.exists():
        return False
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
    return False
