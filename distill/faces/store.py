"""The HDF5 face store: aligned uint8 crops plus where each came from, and a manifest of every source image.

Layout (rows = faces):  pixels (N,S,S,3) uint8 gzip-chunked per face; key, source, label, meta (str);
box (N,4), landmarks (N,5,2), prob (N,) float32. manifest/{key,source,status,reason,faces}: one row per
source image, status 'ok' or 'skipped'. Attributes: distill_kind='face_store', size, crop settings,
reader, fingerprint (sha256 of every face row), provenance.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from distill.errors import DistillError
from distill.storage.files import atomic_path, write_json
from distill.storage.hdf5 import STR, LazyFile, merge_rows, open_ours, read_strings, write_shard

KIND = "face_store"
FACE_COLUMNS = ["pixels", "key", "source", "label", "meta", "box", "landmarks", "prob"]
MANIFEST_COLUMNS = ["key", "source", "status", "reason", "faces"]
FORMAT_VERSION = 1


@dataclass
class FaceRow:
    pixels: np.ndarray  # (S, S, 3) uint8
    key: str
    source: str
    box: np.ndarray  # (4,) x1 y1 x2 y2 in source pixels
    landmarks: np.ndarray  # (5, 2)
    prob: float
    label: str = ""
    meta: str = "{}"


@dataclass
class ManifestRow:
    key: str
    source: str
    status: str  # ok | skipped
    reason: str
    faces: int


def parts_dir(store: Path) -> Path:
    return store.with_name(store.name + ".parts")


def write_part(store: Path, index: int, faces: list[FaceRow], manifest: list[ManifestRow], size: int) -> None:
    """One batch of work, written atomically, so a killed run loses at most the batch in flight."""
    cols = {
        "pixels": np.stack([f.pixels for f in faces]) if faces else np.zeros((0, size, size, 3), np.uint8),
        "box": np.array([f.box for f in faces], np.float32).reshape(-1, 4),
        "landmarks": np.array([f.landmarks for f in faces], np.float32).reshape(-1, 5, 2),
        "prob": np.array([f.prob for f in faces], np.float32),
    }
    for name in ("key", "source", "label", "meta"):
        cols[name] = np.array([getattr(f, name) for f in faces], dtype=object)
    for name in MANIFEST_COLUMNS:
        values = [getattr(m, name) for m in manifest]
        cols[f"manifest/{name}"] = np.array(values, dtype=np.int32 if name == "faces" else object)
    write_shard(parts_dir(store) / f"part-{index:06d}.h5", cols)


def done_keys(store: Path) -> tuple[set[str], int]:
    """Keys of source images already handled (final store + parts), and the next part index."""
    keys: set[str] = set()
    if store.exists():
        with open_ours(store, KIND) as f:
            keys.update(read_strings(f["manifest/key"]))
    parts = sorted(parts_dir(store).glob("part-*.h5"))
    for part in parts:
        with h5py.File(part, "r") as f:
            keys.update(read_strings(f["manifest/key"]))
    next_index = int(parts[-1].stem.split("-")[1]) + 1 if parts else 0
    return keys, next_index


class EmptyStore(DistillError):
    """No face in the store and its parts: nothing is written, the parts are removed; `summary` says why."""

    def __init__(self, summary: dict):
        super().__init__("no face to store")
        self.summary = summary


def record_source(store: Path, source: str, size: int) -> None:
    """Say in an interrupted run's parts folder what it crops, so another source cannot resume into it."""
    if not (parts_dir(store) / "source.json").is_file():
        write_json(parts_dir(store) / "source.json", {"source": source, "size": size})


def recorded_source(store: Path) -> dict | None:
    """{'source', 'size'} of a finished store or of an interrupted run's parts; None when neither exists."""
    if store.exists():
        with open_ours(store, KIND) as f:
            return {"source": str(f.attrs.get("source_root", "")), "size": int(f.attrs["size"])}
    note = parts_dir(store) / "source.json"
    return json.loads(note.read_text()) if note.is_file() else None


def finalize(store: Path, attrs: dict) -> dict:
    """Merge the existing store (if any) and all parts into a new store under the final name, atomically."""
    parts = sorted(parts_dir(store).glob("part-*.h5"))
    if not parts and store.exists():
        with open_ours(store, KIND) as f:
            return summary_of(f)
    sources = ([store] if store.exists() else []) + parts
    handles = [h5py.File(p, "r") for p in sources]
    if sum(len(h["pixels"]) for h in handles) == 0:
        summary = _pending_summary(handles)
        for h in handles:
            h.close()
        _remove_parts(store, parts)
        raise EmptyStore(summary)
    try:
        with atomic_path(store) as tmp, h5py.File(tmp, "w") as out:
            hasher = hashlib.sha256()
            merge_rows(handles, out, FACE_COLUMNS, hasher=hasher)
            if merge_rows(handles, out, [f"manifest/{c}" for c in MANIFEST_COLUMNS], compress=False) == 0:
                for c in MANIFEST_COLUMNS:
                    out.create_dataset(f"manifest/{c}", shape=(0,), dtype=np.int32 if c == "faces" else STR)
            out.attrs.update({k: v for k, v in attrs.items()})
            out.attrs["distill_kind"] = KIND
            out.attrs["format_version"] = FORMAT_VERSION
            out.attrs["fingerprint"] = hasher.hexdigest()
            summary = summary_of(out)
    finally:
        for h in handles:
            h.close()
    _remove_parts(store, parts)
    return summary


def _remove_parts(store: Path, parts: list[Path]) -> None:
    for part in parts:
        part.unlink()
    (parts_dir(store) / "source.json").unlink(missing_ok=True)
    if parts_dir(store).is_dir():
        parts_dir(store).rmdir()


def _pending_summary(handles: list[h5py.File]) -> dict:
    status = [s for h in handles for s in read_strings(h["manifest/status"])]
    reasons = [r for h in handles for r in read_strings(h["manifest/reason"])]
    return _summary(status, reasons, 0)


def summary_of(f: h5py.File) -> dict:
    return _summary(read_strings(f["manifest/status"]), read_strings(f["manifest/reason"]), len(f["pixels"]))


def _summary(status: list[str], reasons: list[str], faces: int) -> dict:
    skipped: dict[str, int] = {}
    for s, r in zip(status, reasons, strict=True):
        if s != "ok":
            kind = r.split(":")[0]
            skipped[kind] = skipped.get(kind, 0) + 1
    return {"images": len(status), "with_face": status.count("ok"), "faces": faces, "skipped": skipped}


class FaceStore(LazyFile):
    """Read access to a finished face store; opens the file lazily (safe to pickle into DataLoader workers)."""

    def __init__(self, path: Path | str):
        self.path = Path(path)
        with open_ours(self.path, KIND) as f:
            self.attrs = dict(f.attrs)
            self.keys = read_strings(f["key"])
            self.labels = read_strings(f["label"])
            self.size = int(f["pixels"].shape[1]) if len(f["pixels"]) else int(self.attrs.get("size", 0))
        self.fingerprint = str(self.attrs["fingerprint"])

    def pixels(self, index) -> np.ndarray:
        """uint8 (S,S,3) for an int, (B,S,S,3) for a sorted index array or slice."""
        return self.file["pixels"][index]

    def meta(self, index: int) -> dict:
        return json.loads(self.file["meta"][index])

    def summary(self) -> dict:
        """Photos, photos with a face, faces, and skipped photos by reason (as crop's summary)."""
        return summary_of(self.file)

    def manifest(self) -> list[dict]:
        f = self.file
        cols = {
            c: (f[f"manifest/{c}"][()] if c == "faces" else read_strings(f[f"manifest/{c}"])) for c in MANIFEST_COLUMNS
        }
        return [dict(zip(cols, row, strict=True)) for row in zip(*cols.values(), strict=True)]


def require_store(path: Path | str) -> FaceStore:
    try:
        return FaceStore(path)
    except KeyError as err:
        raise DistillError(f"{path} is a damaged face store (missing {err}); re-run `distill crop`") from err
