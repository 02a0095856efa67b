"""A fitted VGG-S teacher imported as a run: same outputs, its own caches only, and compressible."""

import pytest
import torch

from distill.compress.distill_file import load_compressed
from distill.compress.pipeline import compress_run
from distill.config import CompressConfig, LabelConfig
from distill.errors import DistillError
from distill.faces.framing import IMAGENET, Preprocess
from distill.labelling.label import label
from distill.teachers.build import build_teacher
from distill.teachers.vgg_s import VGGS, save_checkpoint
from distill.training.teacher_run import import_teacher, own_caches, student_from_checkpoint

CLASSES = ["anger", "happiness", "neutral"]


def small_vgg_s(path, seed: int = 0, batch_norm: bool = False, crop: float = 1.0):
    torch.manual_seed(seed)
    net = VGGS(num_classes=3, width=0.05, size=64, batch_norm=batch_norm)
    if batch_norm:  # statistics of a trained net, not the identity of a fresh one
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
    kwargs = {"width": 0.05, "size": 64, "batch_norm": batch_norm}
    save_checkpoint(path, "vgg_s", net, CLASSES, Preprocess(64, False, crop=crop, **IMAGENET), kwargs)
    return path


@pytest.mark.parametrize(("batch_norm", "crop"), [(False, 1.0), (True, 1.0), (True, 0.8)])
def test_imported_teacher_gives_the_teachers_outputs(tmp_path, batch_norm, crop):
    # crop 0.8: a teacher fitted on whole small face crops sees the centre of each stored face, and so must its import
    path = small_vgg_s(tmp_path / "t.pt", batch_norm=batch_norm, crop=crop)
    teacher, student = build_teacher(f"vgg_s:{path}"), student_from_checkpoint(path)
    faces = torch.rand(4, 3, 80, 80)
    # the ImageNet normalisation is folded into conv1, so the [-1, 1] student input gives the same logits
    torch.testing.assert_close(student(faces), teacher(faces), rtol=1e-4, atol=1e-5)
    assert student.preprocess.mean == (0.5,) and student.arch_kwargs["size"] == 64


def test_import_refuses_other_teachers_caches_and_compresses(tmp_path, face_store):
    path, other = small_vgg_s(tmp_path / "t.pt"), small_vgg_s(tmp_path / "other.pt", seed=1)
    label(face_store, tmp_path / "own.h5", LabelConfig(teacher=f"vgg_s:{path}"), show_progress=False)
    label(face_store, tmp_path / "other.h5", LabelConfig(teacher=f"vgg_s:{other}"), show_progress=False)
    student = student_from_checkpoint(path)
    with pytest.raises(DistillError, match="distill label --teacher"):
        own_caches(student, path, [tmp_path / "other.h5"])
    caches = own_caches(student, path, [tmp_path / "other.h5", tmp_path / "own.h5"])
    assert [c.path.name for c in caches] == ["own.h5"]
    run = tmp_path / "run"
    run.mkdir()
    summary = import_teacher(student, path, [(face_store, tmp_path / "own.h5")], run)
    assert summary["parameters"] == sum(p.numel() for p in VGGS(3, 0.05, 64).parameters())
    out = tmp_path / "hybrid"
    result = compress_run(run, out, CompressConfig("hybrid", epochs=1, lr=1e-4, limit=8), show_progress=False)
    assert result["size_ratio"] > 5 and len(result["rounds"]) == 4
    faces = torch.rand(2, 3, 64, 64)
    assert load_compressed(out / "model.distill")(faces).shape == (2, 3)
