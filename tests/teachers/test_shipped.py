"""The VGG-S shipped inside the package: a bare `vgg_s` builds it, its record is checked, and the real file loads
with its classes and gives its recorded output on a fixed face."""

import json

import numpy as np
import pytest
import torch

from distill.compress.distill_file import save_compressed
from distill.errors import DistillError
from distill.storage.files import sha256_file
from distill.students.model import Student
from distill.teachers import shipped
from distill.teachers.build import build_teacher

CLASSES = ["anger", "happiness", "neutral"]


def _stand_in(folder, mirror=True):
    """A tiny compressed VGG-S and its record in `folder`, as the real ones are laid out."""
    torch.manual_seed(0)
    student = Student("vgg_s_bn", CLASSES, size=32, width=0.05, crop=0.8)
    save_compressed(folder / "vgg_s.distill", student.eval(), {})
    record = {
        "file": "vgg_s.distill",
        "sha256": sha256_file(folder / "vgg_s.distill"),
        "bytes": (folder / "vgg_s.distill").stat().st_size,
        "mirror": mirror,
        "describe": "a stand-in",
        "held_out": {"faces": 10, "dataset": "test", "accuracy": 50.0, "uar": 40.0},
    }
    (folder / "vgg_s.json").write_text(json.dumps(record))
    return student


@pytest.fixture
def stand_in(tmp_path, monkeypatch):
    monkeypatch.setattr(shipped, "WEIGHTS", tmp_path)
    monkeypatch.setattr(shipped, "RECORD", tmp_path / "vgg_s.json")
    monkeypatch.chdir(tmp_path)
    return _stand_in(tmp_path)


def test_a_bare_vgg_s_is_the_shipped_teacher(stand_in):
    teacher = build_teacher("vgg_s")
    assert teacher.classes == CLASSES and teacher.mirror and teacher.preprocess == stand_in.preprocess
    faces = torch.rand(2, 3, 40, 40)
    with torch.no_grad():
        plain = stand_in(faces).softmax(1)
        flipped = stand_in(faces.flip(-1)).softmax(1)
        torch.testing.assert_close(teacher(faces).exp(), (plain + flipped) / 2)
    assert teacher.describe()["weights_sha256"] == sha256_file(shipped.WEIGHTS / "vgg_s.distill")
    assert not build_teacher("vgg_s?mirror=0").mirror


def test_a_damaged_shipped_file_is_refused(stand_in):
    (shipped.WEIGHTS / "vgg_s.distill").write_bytes(b"junk")
    with pytest.raises(DistillError, match="damaged"):
        build_teacher("vgg_s")


def test_without_a_shipped_file_a_bare_vgg_s_says_how_to_fit_one(tmp_path, monkeypatch):
    monkeypatch.setattr(shipped, "RECORD", tmp_path / "none.json")
    with pytest.raises(DistillError, match="fit-teacher"):
        build_teacher("vgg_s")
    assert "None ships" in shipped.shipped_summary()


def test_the_listing_says_what_ships_and_how_good_it_is(stand_in):
    from distill.registry import listing

    line = next(x for x in listing("teachers").splitlines() if x.strip().startswith("vgg_s"))
    assert "Shipped: a stand-in" in line and "50.00% / UAR 40.00% on 10 held-out test faces" in line


# the real file, as it ships (skipped only where this checkout has none yet)
needs_shipped = pytest.mark.skipif(shipped.shipped_record() is None, reason="no shipped VGG-S in this checkout")


def fixed_face() -> torch.Tensor:
    """scikit-image's astronaut, her face cut square: (1,3,112,112) in [0, 1]."""
    from skimage import data

    face = data.astronaut()[20:200, 140:320]  # (180, 180, 3) uint8 around her face
    x = torch.from_numpy(np.ascontiguousarray(face)).permute(2, 0, 1)[None].float() / 255
    return torch.nn.functional.interpolate(x, size=112, mode="area")


@needs_shipped
def test_the_shipped_teacher_loads_with_its_classes_and_recorded_output():
    record = shipped.shipped_record()
    teacher = build_teacher("vgg_s")
    assert teacher.classes == record["classes"] and len(teacher.classes) == 7
    assert (shipped.WEIGHTS / record["file"]).stat().st_size == record["bytes"] <= 10_000_000
    with torch.no_grad():
        probs = teacher(fixed_face()).exp()[0]
    torch.testing.assert_close(probs, torch.tensor(record["fixed_face_probabilities"]), atol=2e-3, rtol=0)
