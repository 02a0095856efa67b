"""Atomic writes and the HDF5 helpers every artefact shares."""

import hashlib

import h5py
import numpy as np
import pytest

from distill.errors import DistillError
from distill.storage.files import atomic_path, write_json
from distill.storage.hdf5 import merge_rows, open_ours, read_strings, write_shard


def test_a_failed_write_leaves_neither_the_file_nor_a_temporary(tmp_path):
    with pytest.raises(RuntimeError), atomic_path(tmp_path / "x.json") as tmp:
        tmp.write_text("half")
        raise RuntimeError
    assert list(tmp_path.iterdir()) == []
    write_json(tmp_path / "x.json", {"a": 1})
    assert (tmp_path / "x.json").read_text() == '{\n  "a": 1\n}\n'


def test_shards_merge_in_order_with_a_stable_hash(tmp_path):
    for i, rows in enumerate(([1, 2], [], [3])):
        cols = {"v": np.array(rows, np.float32), "k": np.array([f"r{r}" for r in rows], dtype=object)}
        write_shard(tmp_path / f"s{i}.h5", cols)
    sources = [h5py.File(tmp_path / f"s{i}.h5", "r") for i in range(3)]
    hashes = []
    for name in ("a", "b"):
        hasher = hashlib.sha256()
        with h5py.File(tmp_path / f"{name}.h5", "w") as out:
            assert merge_rows(sources, out, ["v", "k"], hasher=hasher) == 3
            assert out["v"][()].tolist() == [1, 2, 3] and read_strings(out["k"]) == ["r1", "r2", "r3"]
        hashes.append(hasher.hexdigest())
    assert hashes[0] == hashes[1]


def test_a_file_of_another_kind_is_refused(tmp_path):
    with h5py.File(tmp_path / "c.h5", "w") as f:
        f.attrs["distill_kind"] = "posterior_cache"
    with pytest.raises(DistillError, match="is a distill posterior_cache, expected a distill face_store"):
        open_ours(tmp_path / "c.h5", "face_store")
    with pytest.raises(DistillError, match="does not exist"):
        open_ours(tmp_path / "none.h5", "face_store")


def test_a_pickled_store_opens_its_own_handle(face_store):
    """What a DataLoader worker gets: no open handle travels, and the copy reads the same faces."""
    import pickle

    from distill.faces.store import FaceStore

    store = FaceStore(face_store)
    first = store.pixels(0)  # the parent's handle is open now
    copy = pickle.loads(pickle.dumps(store))
    assert copy._file is None and len(copy) == len(store) > 0
    assert np.array_equal(copy.pixels(0), first) and copy._file is not None
    copy.close()
    store.close()
    assert copy._file is None and store._file is None
