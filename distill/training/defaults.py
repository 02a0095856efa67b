"""What a run resolves before it starts. A setting left unset (None) comes from the student's registry entry (its
measured recipe), from the teacher (the student sees the input the teacher saw: grey and size from the cache's
preprocessing record) or from the pool (the training budget); an explicit flag always wins. The resolved config is
what the run prints and saves."""

from __future__ import annotations

import json
from dataclasses import fields, replace

from distill.config import TrainConfig
from distill.faces.framing import Preprocess, source_side, teacher_framing, teacher_input
from distill.labelling.cache import PosteriorCache
from distill.registry import STUDENTS

BUDGET = 414_000  # face-steps of a student without its own: 30 epochs over 13,800 training faces (docs/results.md)
EPOCHS = (3, 60)  # a budget's epochs are kept in this range: a 100k pool still sees each face 3 times
SMALL_POOL = 1_000  # below it the pool is too small to learn a teacher's function from; said, not refused
MAX_SIDE = 112  # the face store's crop side: a student's input is never upsampled past it
# online: for a cheap teacher; balance 0.5 (1/sqrt draws): what students without a measured one take
FALLBACK = {"small_input": False, "online_teacher": True, "mixup": 0.0, "ema": 0.0, "balance": 0.5}


def recommended(student: str) -> dict:
    """The student's measured recipe, as its registry entry carries it (settings it does not name: none)."""
    return dict(STUDENTS.entry(student).extra.get("recommended", {}))


def training_faces(caches: list[PosteriorCache], val_fraction: float) -> int:
    """The faces training will learn from: those the validation split (by key, as training.data splits) leaves."""
    from distill.training.data import held_out

    return int(sum((~held_out(c.keys, val_fraction)).sum() for c in caches))


def resolve(cfg: TrainConfig, caches: list[PosteriorCache]) -> tuple[TrainConfig, list[str]]:
    """cfg with every unset setting filled in, and one note per setting that was, saying where it came from."""
    faces = training_faces(caches, cfg.val_fraction)
    faces = min(faces, cfg.limit) if cfg.limit else faces
    recipe = recommended(cfg.student)
    if "ema_epochs" in recipe:  # an average over that many epochs of this pool: 0.998 for the recipe's 13.8k faces
        steps = recipe["ema_epochs"] * max(faces / cfg.batch_size, 1)
        recipe["ema"] = round(min(max(1 - 1 / steps, 0.0), 0.9999), 4)
    chosen, notes = _unset(cfg, recipe, caches[0])
    if not chosen.get("online_teacher", cfg.online_teacher) and cfg.use_views and not all(c.views for c in caches):
        notes.append("the cache holds no augmented views: the student sees the plain faces (label --views 4 adds them)")
    if cfg.epochs is None:
        budget = recipe.get("budget", BUDGET)
        chosen["epochs"] = int(min(max(round(budget / max(faces, 1)), EPOCHS[0]), EPOCHS[1]))
        notes.append(f"epochs {chosen['epochs']} ({budget:,} face-steps over {faces:,} training faces)")
    if faces < SMALL_POOL:
        notes.append(f"the pool is small ({faces} training faces): a student learns a teacher from thousands")
    cfg = replace(cfg, **chosen)
    from distill.training.hardware import for_this_machine

    side = min(working_side(cfg, caches[0].teacher), MAX_SIDE)  # the side the faces are held at
    hardware, more = for_this_machine(cfg, sum(len(c) for c in caches) * side * side * 3)
    return replace(cfg, **hardware), notes + more


def working_side(cfg: TrainConfig, teacher: dict) -> int:
    """The side a training step makes its views at: what the student's framing crops its input from, or the
    teacher's when the teacher runs in the step (online teaching, hints) and wants more pixels; the face store's
    side caps it."""

    in_step = cfg.online_teacher or "teacher" in cfg.loss_spec.needs()
    own = Preprocess(cfg.size, crop=cfg.framing).source_side  # what the student's framing crops from
    return max(own, source_side(teacher)) if in_step else own


def _unset(cfg: TrainConfig, recipe: dict, cache: PosteriorCache) -> tuple[dict, list[str]]:
    """Values for the unset input and teaching settings: the teacher's input, then the recipe, then FALLBACK."""
    grey, side = teacher_input(cache.teacher)
    derived = {"grey": grey, "size": min(side, MAX_SIDE), "framing": teacher_framing(cache.teacher)}
    chosen, notes = {}, []
    for name in ("grey", "size", "framing", "small_input", "ema", "balance", "online_teacher"):
        if getattr(cfg, name) is not None:
            continue
        if name in derived:
            chosen[name], why = derived[name], "the teacher's input"
        elif name in recipe:
            chosen[name], why = recipe[name], f"{cfg.student}'s recipe"
        else:
            chosen[name], why = FALLBACK[name], "default" + (" for a cheap teacher" if name == "online_teacher" else "")
        notes.append(f"{name} {chosen[name]} ({why})")
    if chosen.get("online_teacher") and not _cheap(cache):
        chosen["online_teacher"] = False
        notes[-1] = "online_teacher False (the teacher is too big to run every step)"
    if cfg.start_size is None:  # progressive resizing, never past the student's own side
        size = chosen.get("size", cfg.size)
        chosen["start_size"] = min(recipe.get("start_size", size), size)
        growing = chosen["start_size"] < size
        why = f"{cfg.student}'s recipe: progressive resizing" if growing else "no progressive resizing"
        notes.append(f"start_size {chosen['start_size']} ({why})")
    if cfg.mixup is None:  # the recipe's mixup comes with its online teaching, never without
        online = chosen.get("online_teacher", cfg.online_teacher)
        chosen["mixup"] = recipe.get("mixup", 0.0) if online else 0.0
        if chosen["mixup"]:
            notes.append(f"mixup {chosen['mixup']} ({cfg.student}'s recipe)")
    return chosen, notes


def _cheap(cache: PosteriorCache) -> bool:
    from distill.teachers.build import build_teacher, runs_every_step

    made = json.loads(cache.attrs.get("config", "{}"))
    teacher = build_teacher(
        made.get("teacher", cache.teacher["spec"]), made.get("combine", "prob"), made.get("class_map")
    )
    return runs_every_step(teacher)


def unresolved(cfg: TrainConfig) -> list[str]:
    """Settings still unset: a resolved config has none."""
    unset = [f.name for f in fields(cfg) if getattr(cfg, f.name) is None and f.name not in ("hint_layer", "limit")]
    return unset + (["precision"] if cfg.precision == "auto" else [])
