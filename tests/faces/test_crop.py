"""crop on real faces the tests write: bad inputs recorded, resume, no empty stores, one store per folder."""

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from distill.config import CropConfig
from distill.errors import DistillError
from distill.faces import store as fs
from distill.faces.crop import NoFaces, crop
from distill.faces.store import FaceStore
from tests.killing import killed_on_call


def make_bad_corpus(root):
    root.mkdir(parents=True, exist_ok=True)
    good = Image.new("RGB", (64, 64), (200, 150, 120))
    (root / "zero.jpg").write_bytes(b"")
    good.save(root / "full.jpg")
    (root / "truncated.jpg").write_bytes((root / "full.jpg").read_bytes()[:300])
    (root / "full.jpg").unlink()
    (root / "text.jpg").write_text("not an image at all")
    Image.new("RGBA", (64, 64), (10, 20, 30, 0)).save(root / "alpha.png")
    Image.new("CMYK", (64, 64)).save(root / "cmyk.jpg")
    Image.fromarray(np.arange(64 * 64, dtype=np.uint16).reshape(64, 64)).save(root / "sixteen.png")
    good.convert("P").save(root / "palette.png")
    Image.new("RGB", (1, 1)).save(root / "tiny.png")
    Image.new("L", (8200, 8200)).save(root / "bomb.png")  # 67 Mpx > the 60 Mpx bomb limit
    good.save(root / "ñame-ü.jpg")
    os.symlink(root / "loop.jpg", root / "loop.jpg")
    good.save(root / "locked.jpg")
    os.chmod(root / "locked.jpg", 0)  # unreadable, except to root (CI may run as root)
    return root


def test_bad_inputs_are_recorded_not_fatal(tmp_path, face_photos):
    root = make_bad_corpus(tmp_path / "bad")
    shutil.copy(sorted(face_photos.glob("*.jpg"))[0], root / "face.jpg")  # one real face: the store is written
    summary = crop(root, tmp_path / "bad.h5", show_progress=False)
    manifest = {m["key"]: m for m in FaceStore(tmp_path / "bad.h5").manifest()}
    reasons = {k: m["reason"].split(":")[0] for k, m in manifest.items() if m["status"] == "skipped"}
    assert reasons["zero.jpg"] == "empty" and reasons["text.jpg"] == "not-an-image"
    assert reasons["truncated.jpg"] == "corrupt" and reasons["tiny.png"] == "too-small"
    assert reasons["bomb.png"] == "bomb" and reasons["loop.jpg"] == "unreadable"
    for decodable in ("alpha.png", "cmyk.jpg", "sixteen.png", "palette.png", "ñame-ü.jpg"):
        assert reasons[decodable] == "no-face"  # decoded fine, just no face in a flat image
    assert reasons["locked.jpg"] == ("no-face" if os.geteuid() == 0 else "unreadable")
    assert summary["images"] == 13 and summary["faces"] == 1


def test_a_folder_without_faces_writes_nothing(tmp_path):
    root = make_bad_corpus(tmp_path / "bad")
    with pytest.raises(NoFaces, match=r"no usable face in .*bad: 12 images, skipped: .*no-face.*nothing was written"):
        crop(root, tmp_path / "bad.h5", show_progress=False)
    assert not (tmp_path / "bad.h5").exists() and not (tmp_path / "bad.h5.parts").exists()


def test_crop_finds_real_faces_and_resumes(tmp_path, face_photos):
    cfg = CropConfig(size=64, part_images=4)
    whole = crop(face_photos, tmp_path / "a.h5", cfg, show_progress=False)
    assert whole["faces"] >= 11  # real faces: astronaut + 12 LFW faces
    # a run killed after some parts: parts stay, the final file does not exist yet
    with killed_on_call(fs, "write_part", 3), pytest.raises(KeyboardInterrupt):
        crop(face_photos, tmp_path / "b.h5", cfg, show_progress=False)
    assert not (tmp_path / "b.h5").exists() and len(list((tmp_path / "b.h5.parts").glob("part-*"))) == 2
    resumed = crop(face_photos, tmp_path / "b.h5", cfg, show_progress=False)
    assert resumed["new_images"] == 13 - 8
    a, b = FaceStore(tmp_path / "a.h5"), FaceStore(tmp_path / "b.h5")
    assert a.keys == b.keys and a.fingerprint == b.fingerprint
    assert crop(face_photos, tmp_path / "b.h5", cfg, show_progress=False)["new_images"] == 0
    # a fresh detection process for every part (they are replaced to keep memory flat) changes nothing
    fresh = CropConfig(size=64, part_images=4, worker_parts=1)
    crop(face_photos, tmp_path / "c.h5", fresh, show_progress=False)
    assert FaceStore(tmp_path / "c.h5").fingerprint == a.fingerprint


def test_two_folders_of_one_name_get_two_stores(tmp_path, face_photos):
    from distill.commands import crop as command
    from distill.workspace import Workspace

    ws = Workspace(tmp_path / "w")
    jpgs = sorted(face_photos.glob("*.jpg"))
    for leaf, photo in (("photos", jpgs[0]), ("images", jpgs[1])):
        (tmp_path / "x" / leaf).mkdir(parents=True)
        shutil.copy(photo, tmp_path / "x" / leaf)
    first = command.run(ws, tmp_path / "x" / "photos", None, cfg=CropConfig(size=32))
    second = command.run(ws, tmp_path / "x" / "images", None, cfg=CropConfig(size=32))
    assert first["store"] == str((tmp_path / "w" / "faces" / "x.h5").resolve())
    assert second["store"] != first["store"] and Path(second["store"]).name.startswith("x-")
    assert FaceStore(first["store"]).keys == [jpgs[0].name] and FaceStore(second["store"]).keys == [jpgs[1].name]
    assert command.run(ws, tmp_path / "x" / "images", None, cfg=CropConfig(size=32))["new_images"] == 0  # found again
    with pytest.raises(DistillError, match=r"x.h5 holds 32 px crops of .*photos, not 32 px crops of .*images"):
        crop(tmp_path / "x" / "images", Path(first["store"]), CropConfig(size=32), show_progress=False)


def test_the_bar_counts_photos_not_parts(tmp_path, face_photos, monkeypatch):
    import contextlib

    import distill.faces.crop as crop_module

    advanced = []

    @contextlib.contextmanager
    def bar(description, total, enabled=True):
        yield advanced.append

    monkeypatch.setattr(crop_module, "progress_bar", bar)
    crop(face_photos, tmp_path / "a.h5", CropConfig(size=64), show_progress=True)  # 13 photos, one 256-photo part
    assert sum(advanced) == 13


def test_a_chunk_reports_each_detected_batch_and_its_bad_photos(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    from distill.datasets.readers import Sample
    from distill.faces.crop import process_chunk

    for i in range(5):
        Image.new("RGB", (64, 64), (i, 0, 0)).save(tmp_path / f"{i}.jpg")
    (tmp_path / "bad.jpg").write_bytes(b"")
    samples = [Sample(p.name, path=p) for p in sorted(tmp_path.glob("*.jpg"))]

    class NoFaceDetector:
        def detect(self, images):
            return [None for _ in images]

    told = []
    with ThreadPoolExecutor(2) as pool:
        process_chunk(NoFaceDetector(), samples, CropConfig(size=64, batch=2), pool, told.append)
    assert told == [1, 2, 2, 1]  # the unreadable photo, then the batches of two as they finish
