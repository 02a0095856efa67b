"""Atomic file writing and hashing: nothing half-written ever sits under a final name."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from distill.errors import DistillError

FULL_BELOW = 16 * 2**20  # bytes free under which a failed write is put down to a full disk


@contextlib.contextmanager
def atomic_path(final: Path | str) -> Iterator[Path]:
    """Yield a temporary path beside `final`; rename it over `final` only if the block succeeds."""
    final = Path(final)
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
        os.close(fd)
    except OSError as err:
        raise DistillError(f"cannot write to {final.parent}: {err.strerror or err}") from err
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, final)
    except OSError as err:  # h5py's errors span lines and bury errno 28 in their text: say what it means
        if disk_full(err, final.parent):
            raise DistillError(f"cannot write {final}: the disk holding {final.parent.resolve()} is full") from err
        raise DistillError(f"cannot write {final}: {err.strerror or err}".splitlines()[0]) from err
    finally:
        tmp_path.unlink(missing_ok=True)


def require_content(path: Path) -> Path:
    """`path`, refused with one line if it is an empty file (a copy that failed, a disk that was full): every
    reader would otherwise fail deep inside a library with its own words."""
    if path.is_file() and path.stat().st_size == 0:
        raise DistillError(f"{path} is empty (0 bytes): not a model, graph or checkpoint")
    return path


def disk_full(err: BaseException, folder: Path) -> bool:
    """Whether a failed write failed for want of space: ENOSPC, or a library's own words for a short write (torch's
    zip writer: 'unexpected pos') on a disk with next to nothing free."""
    if isinstance(err, OSError) and err.errno == errno.ENOSPC:
        return True
    try:
        return shutil.disk_usage(folder).free < FULL_BELOW
    except OSError:
        return False


def write_json(path: Path | str, obj: Any) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, default=str) + "\n")


def write_text(path: Path | str, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def sha256_file(path: Path | str, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()
