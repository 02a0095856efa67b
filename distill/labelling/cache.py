"""The posterior cache: a teacher's logits and softmax posteriors for every face of a store, self-describing; its
writer (from a labelling's part files) and its reader.

Layout: logits, probs (N,C) float32 for the clean face; optionally views/params (N,K,7) and views/logits,
views/probs (N,K,C) for K augmented views; keys (N,) face keys. Attributes say what made it: teacher spec,
description and weight hashes, classes, preprocessing, store path and fingerprint, augmentation, provenance.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import h5py
import numpy as np

from distill.errors import DistillError
from distill.provenance import provenance
from distill.storage.files import atomic_path
from distill.storage.hdf5 import LazyFile, merge_rows, open_ours, read_strings

KIND = "posterior_cache"
ROOM_FACTOR, ROOM_SPARE = 1.2, 2**18  # the cache is about the parts' size; HDF5 adds a little


class PosteriorCache(LazyFile):
    """Read access; the logits are read at once, the views by view_arrays() (file opened per worker)."""

    def __init__(self, path: Path | str):
        self.path = Path(path)
        with open_ours(self.path, KIND) as f:
            try:
                self.attrs = {k: f.attrs[k] for k in f.attrs}
                self.classes = json.loads(f.attrs["classes"])
                self.teacher = json.loads(f.attrs["teacher"])
                self.keys = read_strings(f["keys"])
                self.logits = f["logits"][()]
                self.views = int(f.attrs.get("views", 0))
                # the augmentation ranges the views were drawn from; fresh views at train time reuse them
                self.augment = json.loads(f.attrs.get("config", "{}")).get("augment", {})
            except KeyError as err:
                raise DistillError(f"{self.path} is a damaged posterior cache (missing {err}); re-run label") from err
        self.store_fingerprint = str(self.attrs["store_fingerprint"])
        self.store_path = Path(str(self.attrs["store_path"]))

    def view_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """(params (N,V,7), logits (N,V,C)) of every view, read at once: small beside the pixels (100k faces x 8
        views: 45 MB), and random reads of them per face cost more than a training step's data otherwise."""
        return self.file["views/params"][()], self.file["views/logits"][()]

    def check_store(self, store) -> None:
        """Refuse a cache made for another face store."""
        if store.fingerprint != self.store_fingerprint or len(store) != len(self):
            raise DistillError(
                f"{self.path} was labelled on a different face store (fingerprint {self.store_fingerprint[:12]}, "
                f"{len(self)} faces) than {store.path} ({store.fingerprint[:12]}, {len(store)} faces); "
                f"re-run `distill label --teacher {self.teacher.get('spec', 'SPEC')} {store.path}`"
            )

    def check_classes(self, classes: list[str]) -> None:
        if list(classes) != list(self.classes):
            raise DistillError(f"{self.path} has classes {self.classes}, expected {classes}")


def probs_of(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(-1, keepdims=True)
    e = np.exp(z)
    return (e / e.sum(-1, keepdims=True)).astype(np.float32)


def write_cache(out: Path, parts: Path, teacher, store, config: dict) -> None:
    """The cache `out`, written whole from the part files of a labelling (then removed): the rows in the store's
    order, and what made them (the teacher's description, the store's path and fingerprint, the label config)."""
    files = sorted(parts.glob("part-*.h5"))
    _require_room(out, parts, sum(p.stat().st_size for p in files))
    handles = [h5py.File(p, "r") for p in files]
    names = ["logits", "probs", "keys"] + (["views/params", "views/logits", "views/probs"] if config["views"] else [])
    try:
        with atomic_path(out) as tmp, h5py.File(tmp, "w") as f:
            hasher = hashlib.sha256()
            merge_rows(handles, f, names, compress=False, hasher=hasher)
            if list(map(str, f["keys"].asstr()[()])) != store.keys:
                raise DistillError("internal: labelled rows do not match the face store; re-run with --fresh")
            attrs = {
                "distill_kind": KIND,
                "format_version": 1,
                "classes": json.dumps(teacher.classes),
                "teacher": json.dumps(teacher.describe()),
                "store_path": str(store.path.resolve()),
                "store_fingerprint": store.fingerprint,
                "views": config["views"],
                "fingerprint": hasher.hexdigest(),
                "config": json.dumps(config),
                "provenance": json.dumps(provenance("label")),
            }
            f.attrs.update(attrs)
            f["keys"].attrs["note"] = "face keys, row-aligned with the face store"
            f.attrs["preprocess"] = json.dumps(getattr(teacher.preprocess, "to_dict", lambda: "per member")())
    finally:
        for h in handles:
            h.close()
    shutil.rmtree(parts)  # the parts, their identity, and any temporary file a killed writer left


def _require_room(out: Path, parts: Path, need: int) -> None:
    """Refuse to join the parts where the disk cannot hold the cache (about their size): HDF5 writing onto a full
    disk crashed the process; refused here, the parts stay for the same command once there is room."""
    free = shutil.disk_usage(out.parent).free
    if free < need * ROOM_FACTOR + ROOM_SPARE:
        raise DistillError(
            f"cannot write {out}: the disk holding {out.parent.resolve()} has {free / 2**20:.1f} MiB free and the "
            f"cache needs about {need / 2**20:.1f} MiB; the labelled parts are kept in {parts}: free some space "
            "and run the same command again"
        )
