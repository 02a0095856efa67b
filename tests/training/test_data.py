"""The batch-at-a-time data: faces in memory or read per batch give the same batches; views and targets line up."""

import numpy as np
import pytest
import torch

from distill.config import LabelConfig, TrainConfig
from distill.faces import augment
from distill.faces.store import FaceStore
from distill.labelling.cache import PosteriorCache
from distill.labelling.label import label
from distill.training.data import DistillData, Pixels


@pytest.fixture(scope="module")
def source(tmp_path_factory, face_store):
    cache = tmp_path_factory.mktemp("data") / "c.h5"
    label(face_store, cache, LabelConfig(teacher="mini_xception", views=3), show_progress=False)
    return face_store, cache


def test_a_batch_is_its_faces_in_the_samplers_order(source):
    store, cache = source
    data = DistillData([source], batch_size=4, views="identity")
    faces = data.train_set.parts[0].indices
    picks = [3, 0, 2, 0]  # out of order, one face twice (balanced draws replace)
    batch = data.train_set.__getitems__(picks)
    np.testing.assert_array_equal(batch["index"].numpy(), faces[picks])
    np.testing.assert_array_equal(batch["pixels"].numpy(), FaceStore(store).pixels(np.sort(faces[:4]))[[3, 0, 2, 0]])
    np.testing.assert_allclose(batch["teacher_logits"].numpy(), PosteriorCache(cache).logits[faces[picks]])
    assert data.train_set[2]["index"] == faces[2]


def test_cached_views_pair_each_params_with_the_logits_of_that_view(source):
    torch.manual_seed(0)
    data = DistillData([source], batch_size=4)
    batch = data.train_set.__getitems__(list(range(len(data.train_set))))
    params, logits = PosteriorCache(source[1]).view_arrays()
    columns = (batch["index"].numpy(), batch["params"].numpy(), batch["teacher_logits"].numpy())
    for face, p, z in zip(*columns, strict=True):
        k = int(np.flatnonzero((params[face] == p).all(1))[0])  # which of the face's views was drawn
        np.testing.assert_allclose(z, logits[face, k])


def test_faces_in_memory_at_the_students_side_match_the_ones_read_per_batch(source):
    store = FaceStore(source[0])
    in_memory, on_disk = Pixels(store, 32, in_memory=True), Pixels(store, 32, in_memory=False)
    rows = np.array([1, 5, 1])
    x_disk = augment.resize(augment.to_float(on_disk.take(rows)), 32)  # what the training step does to them
    x_mem = augment.to_float(in_memory.take(rows))
    assert in_memory.array.shape == (len(store), 32, 32, 3) and on_disk.array is None
    assert (x_mem - x_disk).abs().max() <= 0.5 / 255 + 1e-6  # the same faces, rounded to uint8 once


def test_the_last_batch_of_one_face_is_dropped_where_full_batches_exist(source):
    data = DistillData([source], batch_size=len(DistillData([source]).train_set) - 1)
    sizes = [len(b["index"]) for b in data.train_dataloader()]
    assert sizes == [data.batch_size]  # one full batch; the one-face remainder would stop BatchNorm
    assert sum(len(b["index"]) for b in data.val_dataloader()) == len(data.val_set)


def test_the_students_views_are_the_teachers_pixels():
    x = torch.rand(2, 3, 112, 112)
    params = torch.from_numpy(augment.sample_params(2, augment.AugmentConfig(), np.random.default_rng(0)))
    teacher_view = augment.views_at(x, params, 64)  # label, for a 64 px teacher
    student_view = augment.views_at(augment.resize(x, 64), params, 64)  # train, from faces held at 64 px
    torch.testing.assert_close(teacher_view, student_view)
    assert augment.views_at(x, params, 224).shape[-1] == 112  # never upsampled


def test_hardware_settings_resolve_and_an_explicit_one_wins(source, monkeypatch):
    import distill.training.defaults as defaults
    import distill.training.hardware as hardware

    cache = PosteriorCache(source[1])
    cfg, notes = defaults.resolve(TrainConfig(), [cache])
    assert cfg.in_memory is True and cfg.workers == 0 and cfg.precision in ("32", "bf16-mixed")
    assert any(n.startswith("in_memory True") for n in notes)
    monkeypatch.setattr(hardware, "available_memory", lambda: 1000)  # the faces would not fit
    cfg, _ = defaults.resolve(TrainConfig(precision="32"), [cache])
    assert (cfg.in_memory, cfg.workers, cfg.precision) == (False, 2, "32")
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: True)
    assert hardware.auto_precision("cpu") == "bf16-mixed"
