"""Teachers built from their spec (distill.specs.TeacherSpec): one, or an Ensemble of '+'-joined members."""

from __future__ import annotations

from dataclasses import replace

from torch import nn

from distill.datasets.emotions import parse_mapping
from distill.errors import DistillError
from distill.registry import TEACHERS
from distill.specs import TeacherSpec
from distill.teachers.ensemble import Ensemble

# parameters: a teacher this small runs on every training step (online teaching) at little cost, so `label` caches
# no augmented views of it and `train` runs it on fresh mixed views (docs/results.md, function matching)
CHEAP_TEACHER = 2_000_000


def runs_every_step(teacher: nn.Module) -> bool:
    """Whether the teacher is small enough for online teaching by default (CHEAP_TEACHER parameters or fewer)."""
    return sum(p.numel() for p in teacher.parameters()) <= CHEAP_TEACHER


def build_teacher(spec: str, combine: str = "prob", class_map: str | None = None) -> nn.Module:
    """One teacher, or an Ensemble when the spec has several '+'-joined members."""
    built, weights = [], []
    for member in TeacherSpec.parse(spec).members:
        fn = TEACHERS.get(member.name)
        try:
            teacher = fn(member.arg, spec=member.spec, **member.options)
        except TypeError as err:
            raise DistillError(f"teacher '{member.name}' does not take options {sorted(member.options)}") from err
        if member.framing is not None:
            teacher.preprocess = replace(teacher.preprocess, crop=member.framing)
        if member.mirror is not None:
            teacher.mirror = member.mirror
        built.append(teacher)
        weights.append(member.weight)
    if len(built) == 1 and weights[0] == 1.0 and not class_map:
        return built[0]
    return Ensemble(built, weights, combine, parse_mapping(class_map))
