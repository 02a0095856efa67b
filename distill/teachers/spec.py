"""Teacher specs: 'NAME[:ARG][?k=v&k=v][@WEIGHT]' joined by '+' for an ensemble; ?crop=F sets any teacher's
framing (the central share of the stored face it sees)."""

from __future__ import annotations

import math
from dataclasses import replace
from urllib.parse import parse_qsl

from torch import nn

from distill.datasets.emotions import parse_mapping
from distill.errors import DistillError
from distill.registry import TEACHERS
from distill.teachers.ensemble import Ensemble

MIN_CROP = 0.5  # the store keeps the box x 1.25: half its side is well inside the face


def parse_member(text: str) -> tuple[str, str | None, dict[str, str], float]:
    text = text.strip()
    weight = 1.0
    if "@" in text:
        text, w = text.rsplit("@", 1)
        try:
            weight = float(w)
        except ValueError as err:
            raise DistillError(f"teacher weight '{w}' in '{text}@{w}' is not a number") from err
        if not math.isfinite(weight) or weight <= 0:
            raise DistillError(f"teacher weight '{w}' in '{text}@{w}' must be a finite number above 0")
    options: dict[str, str] = {}
    if "?" in text:
        text, query = text.split("?", 1)
        options = dict(parse_qsl(query, keep_blank_values=True))
    name, _, arg = text.partition(":")
    return name, arg or None, options, weight


def _framing(name: str, given: str | None) -> float:
    """The share of the stored face a teacher sees: ?crop=F, else the framing its registry entry declares."""
    if given is None:
        return float(TEACHERS.entry(name).extra.get("framing", 1.0))
    try:
        crop = float(given)
    except ValueError:
        crop = -1.0
    if not MIN_CROP <= crop <= 1:
        raise DistillError(f"teacher '{name}': crop={given} must be a share of the face's side in [{MIN_CROP}, 1]")
    return crop


# parameters: a teacher this small runs on every training step (online teaching) at little cost, so `label` caches
# no augmented views of it and `train` runs it on fresh mixed views (docs/results.md, function matching)
CHEAP_TEACHER = 2_000_000


def runs_every_step(teacher: nn.Module) -> bool:
    """Whether the teacher is small enough for online teaching by default (CHEAP_TEACHER parameters or fewer)."""
    return sum(p.numel() for p in teacher.parameters()) <= CHEAP_TEACHER


def parse_spec(spec: str) -> list[tuple[str, str, str | None, dict[str, str], float, float]]:
    """Each '+'-joined member as (text, name, arg, options, weight, framing), checked (a known teacher, a finite
    positive weight, a framing in range) without building anything: commands call it before any work."""
    members = [m for m in spec.split("+") if m.strip()]
    if not members:
        raise DistillError("empty teacher spec; e.g. --teacher mini_xception")
    parsed = []
    for text in members:
        name, arg, options, weight = parse_member(text)
        TEACHERS.entry(name)
        parsed.append((text, name, arg, options, weight, _framing(name, options.pop("crop", None))))
    return parsed


def build_teacher(spec: str, combine: str = "prob", class_map: str | None = None) -> nn.Module:
    """One teacher, or an Ensemble when the spec has several '+'-joined members."""
    built, weights = [], []
    for text, name, arg, options, weight, crop in parse_spec(spec):
        fn = TEACHERS.get(name)
        try:
            teacher = fn(arg, spec=text.split("@")[0], **options)
        except TypeError as err:
            raise DistillError(f"teacher '{name}' does not take options {sorted(options)}") from err
        teacher.preprocess = replace(teacher.preprocess, crop=crop)
        built.append(teacher)
        weights.append(weight)
    if len(built) == 1 and weights[0] == 1.0 and not class_map:
        return built[0]
    return Ensemble(built, weights, combine, parse_mapping(class_map))
