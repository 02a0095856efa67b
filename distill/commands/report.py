"""`distill report`: report.md and report.png at the workspace's root, over all its runs and evaluations."""

from __future__ import annotations

from pathlib import Path

from distill.errors import DistillError
from distill.evaluate.report import build_report, plot_scores
from distill.storage.files import write_text
from distill.workspace import Workspace


def run(ws: Workspace) -> tuple[Path, str]:
    """Write report.md and report.png at the workspace root; returns (markdown path, markdown). A folder that holds
    no run and no evaluation is refused (a misspelt --workdir), and nothing is created there."""
    if not any(ws.all(kind) for kind in ("run", "compressed", "teacher", "eval")):
        raise DistillError(
            f"no workspace with runs or evaluations at {ws.root} (give --workdir, or run `distill train` or "
            "`distill eval` first)"
        )
    text, rows = build_report(ws.root, [p.parent for p in ws.all("run")], ws.all("eval"))
    png = plot_scores(rows, ws.root / "report.png")
    if png:
        text += f"\nChart: `{png}`\n"
    path = ws.root / "report.md"
    write_text(path, text)
    return path, text
