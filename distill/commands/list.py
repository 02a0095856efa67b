"""`distill list`: the registered teachers, students, losses, compressors, datasets and detectors."""

from __future__ import annotations

from distill.registry import TEACHERS, listing
from distill.workspace import Workspace


def run(kind: str | None = None, ws: Workspace | None = None) -> str:
    """The listing of one kind, or of every kind; with a workspace, what each bare fitted teacher means in it."""
    text = listing(kind)
    if ws is not None and kind in (None, "teachers"):
        text += "\n\n" + "\n".join(bare_teacher_means(name, ws) for name in fitted_teachers())
    return text


def fitted_teachers() -> list[str]:
    return [e.name for e in TEACHERS.entries() if e.extra.get("fitted")]


def bare_teacher_means(name: str, ws: Workspace) -> str:
    """Which weights a bare `--teacher NAME` takes in this workspace: its newest fit, else the shipped ones."""
    pinned = ws.pin_fitted(name)
    if pinned != name:
        return f"A bare {name} in {ws.root.resolve()} is its newest fit: {pinned.partition(':')[2]}"
    return f"A bare {name} in {ws.root.resolve()} is the one shipped with distill, where one ships (no fit there)."
