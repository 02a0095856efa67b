"""What a run resolves: the student's recipe, the teacher's input, the pool's budget; explicit flags win."""

import pytest

import distill.teachers.build as spec
import distill.training.defaults as defaults
from distill.config import LabelConfig, TrainConfig
from distill.errors import DistillError
from distill.labelling.cache import PosteriorCache
from distill.labelling.label import label, resolved_label

MINI = "mini_xception"


@pytest.fixture(scope="module")
def cache(tmp_path_factory, face_store):
    path = tmp_path_factory.mktemp("defaults") / "c.h5"
    label(face_store, path, LabelConfig(teacher=MINI, views=0), show_progress=False)
    return PosteriorCache(path)


def test_squeezenet_gets_the_teachers_input_and_its_recipe(cache):
    cfg, notes = defaults.resolve(TrainConfig(), [cache])
    assert (cfg.grey, cfg.size, cfg.small_input) == (True, 64, False)
    assert (cfg.online_teacher, cfg.mixup) == (True, 0.4)  # function matching: mini_xception is cheap to run
    assert cfg.framing == 0.8  # mini_xception's measured framing, which the cache recorded
    assert 0 < cfg.ema < 0.9  # an average over 2 epochs of a dozen faces: a few steps
    assert cfg.balance == 1.0 and "balance 1.0 (squeezenet1_1_bn's recipe)" in notes
    assert defaults.unresolved(cfg) == []
    assert cfg.epochs == defaults.EPOCHS[1]  # a dozen faces: the budget's epochs are capped
    assert any("the pool is small" in n for n in notes) and any("grey True (the teacher's input)" in n for n in notes)


def test_progressive_resizing_starts_at_the_recipes_side_never_above_the_students(cache):
    cfg, notes = defaults.resolve(TrainConfig(), [cache])  # mini_xception's 64 px: the recipe's start already
    assert cfg.start_size == cfg.size == 64 and "start_size 64 (no progressive resizing)" in notes
    cfg, notes = defaults.resolve(TrainConfig(size=112), [cache])
    assert cfg.start_size == 64 and "start_size 64 (squeezenet1_1_bn's recipe: progressive resizing)" in notes
    cfg, notes = defaults.resolve(TrainConfig(size=112, start_size=96), [cache])
    assert cfg.start_size == 96 and not any(n.startswith("start_size") for n in notes)
    with pytest.raises(DistillError, match="--start-size 96: must be at most --size 80"):
        TrainConfig(size=80, start_size=96)


def test_mobilenet_recipe_and_flags_that_win(cache):
    cfg, _ = defaults.resolve(TrainConfig(student="mobilenetv3_small_100"), [cache])
    assert (cfg.small_input, cfg.online_teacher, cfg.mixup, cfg.ema, cfg.balance) == (True, True, 0.4, 0.0, 0.5)
    given = TrainConfig(student="mobilenetv3_small_100", grey=False, online_teacher=False, epochs=2, ema=0.9, balance=1)
    cfg, notes = defaults.resolve(given, [cache])
    assert (cfg.grey, cfg.online_teacher, cfg.mixup, cfg.epochs, cfg.ema) == (False, False, 0.0, 2, 0.9)
    assert cfg.balance == 1.0 and not any(n.startswith(("grey", "epochs", "ema", "balance")) for n in notes)
    assert any("no augmented views: the student sees the plain faces" in n for n in notes)  # a views-0 cache


def test_a_student_without_a_teaching_recipe_runs_a_cheap_teacher_every_step(cache):
    cfg, notes = defaults.resolve(TrainConfig(student="mobilenetv2_100"), [cache])
    assert (cfg.online_teacher, cfg.mixup) == (True, 0.0)  # fresh views; mixup only where it was measured
    assert "online_teacher True (default for a cheap teacher)" in notes


def test_a_big_teacher_is_not_run_every_step(cache, monkeypatch):
    monkeypatch.setattr(spec, "CHEAP_TEACHER", 10)  # as if mini_xception were VGG-sized
    for student in ("mobilenetv3_small_100", "mobilenetv2_100"):  # with a recipe that says online, and without
        cfg, notes = defaults.resolve(TrainConfig(student=student), [cache])
        assert cfg.online_teacher is False and cfg.mixup == 0.0
        assert "online_teacher False (the teacher is too big to run every step)" in notes


def test_epochs_follow_the_pools_size():
    epochs, ema = {}, {}
    for faces in (4_000, 15_319, 40_000, 100_000):
        cfg, _ = defaults.resolve(TrainConfig(val_fraction=0.1), [_FakeCache(faces)])
        epochs[faces], ema[faces] = cfg.epochs, cfg.ema
    assert epochs == {4_000: 60, 15_319: 40, 40_000: 15, 100_000: 6}  # 552,000 face-steps, 3-60 epochs
    assert ema[15_319] == 0.9977 and ema[4_000] < ema[15_319] < ema[100_000]  # the recipe's 0.998 on its pool


def test_the_training_faces_stated_are_those_the_split_leaves():
    from distill.training.data import held_out

    cache = _FakeCache(200)
    _, notes = defaults.resolve(TrainConfig(val_fraction=0.1), [cache])
    trained = int((~held_out(cache.keys, 0.1)).sum())
    assert trained != 180  # the split is by key: not exactly 90% of 200
    assert f"the pool is small ({trained} training faces)" in " ".join(notes)


def test_label_caches_no_views_of_a_cheap_teacher_and_views_by_the_pools_size_of_a_big_one(monkeypatch):
    assert resolved_label(LabelConfig(teacher=MINI), 4_000)[0].views == 0  # students run it on fresh views
    assert resolved_label(LabelConfig(teacher=MINI, views=3), 4_000)[0].views == 3
    monkeypatch.setattr(spec, "CHEAP_TEACHER", 10)  # as if mini_xception were VGG-sized
    views = {n: resolved_label(LabelConfig(teacher=MINI), n)[0].views for n in (100, 4_000, 11_354, 15_319, 100_000)}
    assert views == {100: 8, 4_000: 8, 11_354: 5, 15_319: 4, 100_000: 2}


class _FakeCache:
    """A cache of `n` faces from a grey 64 px teacher (what resolve reads of one)."""

    def __init__(self, n: int):
        self.n = n
        self.teacher = {"spec": "mini_xception", "preprocess": {"grey": True, "size": 64}}
        self.attrs = {}  # no label config recorded: the teacher is rebuilt from its spec
        self.views = 0
        self.keys = [f"face_{i}.jpg" for i in range(n)]

    def __len__(self) -> int:
        return self.n
