"""Small HDF5 helpers shared by the face store and the posterior cache (sharded writes, streaming merge)."""

from __future__ import annotations

import io
from collections.abc import Iterable
from pathlib import Path

import h5py
import numpy as np

from distill.errors import DistillError
from distill.storage.files import atomic_path

STR = h5py.string_dtype("utf-8")
COPY_BLOCK = 512  # rows per copy step when merging: keeps memory flat in the number of rows


def open_ours(path: Path | str, kind: str) -> h5py.File:
    """Open an HDF5 file read-only and check it is a distill artefact of `kind`."""
    path = Path(path)
    if not path.is_file():
        raise DistillError(f"{path} does not exist")
    try:
        f = h5py.File(path, "r")
    except OSError as err:
        raise DistillError(f"{path} is not a readable HDF5 file ({err})") from err
    found = f.attrs.get("distill_kind")
    if found != kind:
        f.close()
        what = f"a distill {found}" if found else "not a distill file"
        raise DistillError(f"{path} is {what}, expected a distill {kind}")
    return f


class LazyFile:
    """A read-only artefact whose HDF5 handle opens on first use: safe to pickle into DataLoader workers, each of
    which then opens its own handle. Subclasses set `path` and `keys` (one row a key)."""

    path: Path
    keys: list[str]
    _file: h5py.File | None = None

    def __len__(self) -> int:
        return len(self.keys)

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_file"] = None  # each worker opens its own handle
        return state

    @property
    def file(self) -> h5py.File:
        if self._file is None:
            self._file = h5py.File(self.path, "r")
        return self._file

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def write_shard(path: Path, columns: dict[str, np.ndarray], attrs: dict | None = None) -> None:
    """Write one shard atomically: readers never see a half-written shard. The HDF5 file is made in memory and
    written by Python: on a full disk HDF5's own failed writes left broken handles that crashed the process at exit
    (a segfault after pages of tracebacks); Python's write fails cleanly, and the shards before stay whole."""
    image = io.BytesIO()
    with h5py.File(image, "w") as f:
        for name, values in columns.items():
            dtype = STR if values.dtype.kind in "UO" else values.dtype
            f.create_dataset(name, data=values.astype(object) if dtype is STR else values, dtype=dtype)
        for key, value in (attrs or {}).items():
            f.attrs[key] = value
    with atomic_path(path) as tmp:
        tmp.write_bytes(image.getbuffer())


def read_strings(ds: h5py.Dataset) -> list[str]:
    return [s.decode() if isinstance(s, bytes) else str(s) for s in ds[()]]


def create_like(out: h5py.File, name: str, first: h5py.Dataset, total: int, compress: bool) -> h5py.Dataset:
    shape = (total, *first.shape[1:])
    chunks = (1, *first.shape[1:]) if compress and first.ndim > 2 else None
    kwargs = {"compression": "gzip", "compression_opts": 4, "shuffle": True} if compress and first.ndim > 2 else {}
    return out.create_dataset(name, shape=shape, dtype=first.dtype, chunks=chunks, **kwargs)


def merge_rows(sources: Iterable[h5py.File], out: h5py.File, names: list[str], compress: bool = True, hasher=None):
    """Concatenate the row datasets `names` of each source into `out`, block by block."""
    sources = list(sources)
    total = sum(len(src[names[0]]) for src in sources) if sources else 0
    if total == 0:
        return 0
    first = next(src for src in sources if len(src[names[0]]))
    targets = {n: create_like(out, n, first[n], total, compress) for n in names}
    row = 0
    for src in sources:
        n_rows = len(src[names[0]])
        for start in range(0, n_rows, COPY_BLOCK):
            stop = min(start + COPY_BLOCK, n_rows)
            for name in names:
                block = src[name][start:stop]
                targets[name][row : row + stop - start] = block
                if hasher is not None:
                    hasher.update(_bytes_of(block))
            row += stop - start
    return total


def _bytes_of(block: np.ndarray) -> bytes:
    if block.dtype == object:
        return b"\0".join(x if isinstance(x, bytes) else str(x).encode() for x in block.ravel())
    return np.ascontiguousarray(block).tobytes()
