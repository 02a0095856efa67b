"""One small Registry class, one instance per kind of pluggable thing."""

from __future__ import annotations

import importlib
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


class Registry:
    """Maps names to factory functions; an unknown name fails with the list of valid ones."""

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, Entry] = {}

    def register(self, name: str, **extra: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
            if name in self._entries:
                raise ValueError(f"{self.kind} '{name}' registered twice")
            doc = (fn.__doc__ or "").strip().splitlines()
            self._entries[name] = Entry(name, fn, doc[0] if doc else "", extra)
            return fn

        return decorate

    def entry(self, name: str) -> Entry:
        _load_all()
        if name not in self._entries:
            plural = self.kind + ("es" if self.kind.endswith("s") else "s")
            raise DistillError(f"unknown {self.kind} '{name}'; valid {plural}: {', '.join(self.names())}")
        return self._entries[name]

    def get(self, name: str) -> Callable[..., Any]:
        return self.entry(name).fn

    def names(self) -> list[str]:
        _load_all()
        return sorted(self._entries)

    def entries(self) -> list[Entry]:
        return [self._entries[n] for n in self.names()]

    def __contains__(self, name: str) -> bool:
        _load_all()
        return name in self._entries


TEACHERS = Registry("teacher")
STUDENTS = Registry("student")
LOSSES = Registry("loss")
COMPRESSORS = Registry("compressor")
DATASETS = Registry("dataset")
REGISTRIES = {r.kind + "s": r for r in (TEACHERS, STUDENTS, LOSSES, COMPRESSORS, DATASETS)}

# Modules whose import registers entries; imported lazily so `import distill` stays cheap.
_ENTRY_MODULES = ("distill.datasets", "distill.teachers", "distill.students", "distill.losses", "distill.compress")
_loaded = False


def _load_all() -> None:
    global _loaded
    if not _loaded:
        _loaded = True
        for mod in _ENTRY_MODULES:
            importlib.import_module(mod)
