"""One small Registry class, one instance per kind of pluggable thing."""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from distill.errors import DistillError


@dataclass
class Entry:
    name: str
    fn: Callable[..., Any]
    help: str
    extra: dict[str, Any] = field(default_factory=dict)


def first_sentence(doc: str) -> str:
    """A docstring's first sentence, whole however many lines it spans (its first paragraph if it has no full stop)."""
    paragraph = " ".join(doc.strip().split("\n\n")[0].split())
    end = re.search(r"(?<! al)(?<!e\.g)(?<!i\.e)[.!?](\s+[A-Z]|$)", paragraph)  # "et al." ends no sentence
    return paragraph[: end.start() + 1] if end else paragraph


class Registry:
    """Maps names to factory functions; an unknown name fails with the list of valid ones."""

    def __init__(self, kind: str, module: str):
        self.kind = kind
        self.module = module  # importing it registers the entries; lazily, so `import distill` stays cheap
        self._entries: dict[str, Entry] = {}
        self._loaded = False

    @property
    def plural(self) -> str:
        return self.kind + ("es" if self.kind.endswith("s") else "s")

    def _load(self) -> None:
        # only this kind's module: reading a photo folder (datasets) must not import torch, timm and
        # torchvision (teachers, students), ~0.4 GB that `distill crop`'s main process would hold for nothing
        if not self._loaded:
            self._loaded = True
            importlib.import_module(self.module)

    def register(self, name: str, **extra: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
            if name in self._entries:
                raise ValueError(f"{self.kind} '{name}' registered twice")
            self._entries[name] = Entry(name, fn, first_sentence(fn.__doc__ or ""), extra)
            return fn

        return decorate

    def entry(self, name: str) -> Entry:
        self._load()
        if name not in self._entries:
            raise DistillError(f"unknown {self.kind} '{name}'; valid {self.plural}: {', '.join(self.names())}")
        return self._entries[name]

    def get(self, name: str) -> Callable[..., Any]:
        return self.entry(name).fn

    def names(self) -> list[str]:
        self._load()
        return sorted(self._entries)

    def entries(self) -> list[Entry]:
        return [self._entries[n] for n in self.names()]

    def __contains__(self, name: str) -> bool:
        self._load()
        return name in self._entries


TEACHERS = Registry("teacher", "distill.teachers")
STUDENTS = Registry("student", "distill.students")
LOSSES = Registry("loss", "distill.losses")
COMPRESSORS = Registry("compressor", "distill.compress")
DATASETS = Registry("dataset", "distill.datasets")
DETECTORS = Registry("detector", "distill.faces.detectors")
REGISTRIES = {r.plural: r for r in (TEACHERS, STUDENTS, LOSSES, COMPRESSORS, DATASETS, DETECTORS)}


def listing(kind: str | None = None) -> str:
    """`distill list [KIND]`: each registry's names with their one-line help."""
    if kind is not None and kind not in REGISTRIES:
        raise DistillError(f"unknown kind '{kind}'; valid: {', '.join(REGISTRIES)}")
    blocks = []
    for name, reg in REGISTRIES.items():
        if kind in (None, name):
            width = max(len(n) for n in reg.names())
            lines = [f"  {e.name.ljust(width)}  {e.help}{_recipe(e)}" for e in reg.entries()]
            blocks.append("\n".join([f"{name}:", *lines]))
    return "\n\n".join(blocks)


def _recipe(entry: Entry) -> str:
    """A student's recommended settings, as `distill train` applies them when left unset; a teacher's framing; what
    an entry says of itself at listing time (`about`: e.g. which weights ship)."""
    if "about" in entry.extra:
        return entry.extra["about"]()
    if "min_prob" in entry.extra:  # a detector ('whole' scores nothing: no threshold to state)
        return f" Detections kept from score {entry.extra['min_prob']}." if entry.extra["min_prob"] else ""
    if "framing" in entry.extra:
        return f" Framing: crop {entry.extra['framing']} (measured)."
    recipe = entry.extra.get("recommended")
    return f" Recipe: {', '.join(f'{k} {v}' for k, v in recipe.items())}." if recipe else ""
