"""The small languages of the command line, each parsed in one place into a typed object that is passed down:
teacher specs, loss specs and compression plans. Names are checked against the registries (which import their
modules lazily), so a bad spec is refused before any work; nothing here imports torch."""

from __future__ import annotations

import math
from dataclasses import dataclass
from urllib.parse import parse_qsl

from distill.errors import DistillError
from distill.registry import COMPRESSORS, LOSSES, TEACHERS
from distill.settings import out_of_range, valid_range

MIN_CROP = 0.5  # the store keeps the box x 1.25: half its side is well inside the face


def joined(text: str, flag: str, example: str) -> list[str]:
    """The '+'-joined parts of a spec, each stripped; an empty one (a dangling or doubled '+') is refused."""
    parts = [part.strip() for part in text.split("+")]
    if not any(parts):
        raise DistillError(f"{flag}: empty; e.g. {flag} {example}")
    if not all(parts):
        raise DistillError(f"{flag} {text}: an empty part between '+' signs; e.g. {flag} {example}")
    return parts


@dataclass(frozen=True)
class TeacherMember:
    """One '+'-joined member of a teacher spec: 'NAME[:ARG][?k=v&k=v][@WEIGHT]'; ?crop=F is its framing, ?mirror=1
    (or 0) averages each face's posterior with its mirror image's (or not)."""

    text: str  # as written, weight included
    name: str
    arg: str | None
    options: dict[str, str]
    weight: float
    framing: float | None  # None: the teacher's own (a fitted checkpoint records the framing it learnt at)
    mirror: bool | None = None  # None: the teacher's own (a fitted checkpoint records whether it was scored so)

    @property
    def spec(self) -> str:
        """The member without its weight: what the teacher records as its own spec."""
        return self.text.split("@")[0]


@dataclass(frozen=True)
class TeacherSpec:
    """A teacher, or an ensemble of several ('mini_xception+face_api@0.5')."""

    members: tuple[TeacherMember, ...]

    @classmethod
    def parse(cls, text: str) -> TeacherSpec:
        """Checked without building anything (a known teacher, a finite positive weight, a framing in range)."""
        return cls(tuple(_member(m) for m in joined(text, "--teacher", "mini_xception+face_api")))


def names_a_teacher(text: str) -> bool:
    """Whether a --model is a teacher spec: its first member names a registered teacher ('mini_xception',
    'vgg_s:CKPT.pt', 'onnx:PATH+face_api'); anything else is a path to a model artefact."""
    first = text.split("+")[0].split("@")[0].split("?")[0]
    return first.partition(":")[0] in TEACHERS


def parse_member(text: str) -> tuple[str, str | None, dict[str, str], float]:
    """(name, arg, options, weight) of one member's text."""
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
        pairs = parse_qsl(query, keep_blank_values=True)
        options = dict(pairs)
        if len(options) < len(pairs):
            twice = sorted({k for k, _ in pairs if sum(k == other for other, _ in pairs) > 1})
            raise DistillError(f"teacher '{text}': option {', '.join(twice)} given twice in '?{query}'")
    name, _, arg = text.partition(":")
    return name, arg or None, options, weight


def _member(text: str) -> TeacherMember:
    name, arg, options, weight = parse_member(text)
    TEACHERS.entry(name)
    framing = _framing(name, options.pop("crop", None))
    return TeacherMember(text, name, arg, options, weight, framing, _mirror(name, options.pop("mirror", None)))


def _mirror(name: str, given: str | None) -> bool | None:
    if given is None:
        return None
    if given not in ("0", "1"):
        raise DistillError(f"teacher '{name}': mirror={given} must be 1 (average with the mirror image) or 0")
    return given == "1"


def _framing(name: str, given: str | None) -> float | None:
    """The share of the stored face a teacher sees: ?crop=F, else the framing its registry entry declares, else None
    (the teacher's own: a fitted checkpoint records the framing it was trained at)."""
    if given is None:
        declared = TEACHERS.entry(name).extra.get("framing")
        return None if declared is None else float(declared)
    try:
        crop = float(given)
    except ValueError:
        crop = -1.0
    if not MIN_CROP <= crop <= 1:
        raise DistillError(f"teacher '{name}': crop={given} must be a share of the face's side in [{MIN_CROP}, 1]")
    return crop


@dataclass(frozen=True)
class LossSpec:
    """'kld:0.9+label:0.1': losses (distill list losses) and their weights (default 1)."""

    terms: tuple[tuple[str, float], ...]

    @classmethod
    def parse(cls, text: str) -> LossSpec:
        terms = []
        for part in joined(text, "--loss", "kld:0.9+label:0.1"):
            name, _, weight = part.partition(":")
            if name in (term for term, _ in terms):
                raise DistillError(f"--loss {text}: {name} given twice (one term, with its weight: {name}:2)")
            LOSSES.entry(name)  # an unknown name lists the valid ones
            try:
                value = float(weight) if weight else 1.0
            except ValueError as err:
                raise DistillError(f"--loss {text}: the weight '{weight}' of {name} is not a number") from err
            if not 0 < value < float("inf"):
                raise DistillError(f"--loss {text}: the weight of {name} must be > 0 (given {weight})")
            terms.append((name, value))
        return cls(tuple(terms))

    def needs(self) -> set[str]:
        """What the terms need beyond the cache's logits, as each loss declares it where it is registered:
        'features' (feature maps of both nets), 'teacher' (the live teacher), 'labels' (the store's)."""
        return set().union(*(LOSSES.entry(name).extra.get("needs", set()) for name, _ in self.terms))


@dataclass(frozen=True)
class MethodSpec:
    """One compressor with its optional numeric option: 'cp', 'cp:0.3', 'prune:0.8'."""

    name: str
    value: float | None

    @classmethod
    def parse(cls, text: str) -> MethodSpec:
        name, _, arg = text.strip().partition(":")
        option = COMPRESSORS.get(name).option  # an unknown name lists the valid ones
        if not arg:
            return cls(name, None)
        if option is None:
            raise DistillError(f"compressor '{name}' takes no option (given '{text}')")
        what, valid = option
        try:
            value = float(arg)
        except ValueError as err:
            raise DistillError(f"{text}: the {what} '{arg}' is not a number") from err
        if out_of_range(value, valid):
            raise DistillError(f"{text}: the {what} must be {valid_range(valid)}")
        return cls(name, value)


@dataclass(frozen=True)
class CompressPlan:
    """Compressors applied in order, '+'-joined: 'prune-ch:0.5+quant'."""

    methods: tuple[str, ...]

    @classmethod
    def parse(cls, text: str) -> CompressPlan:
        methods = tuple(joined(text, "--method", "prune-ch:0.5+quant"))
        for method in methods:
            MethodSpec.parse(method)
        if any(m.startswith("prune-ch") for m in methods[1:]):
            raise DistillError(
                "prune-ch changes the network's shape, so it must come first in a chain (prune-ch+quant)"
            )
        return cls(methods)
