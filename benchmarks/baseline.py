"""An older commit of distill beside this one: a git worktree of it, and its CLI run in a subprocess.

The older code is imported from its worktree by putting it first on PYTHONPATH (ahead of this checkout's editable
install), with this environment's packages, so the two are measured on the same machine in the same run.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@contextlib.contextmanager
def worktree(rev: str) -> Iterator[Path]:
    """A detached checkout of `rev` in a temporary folder, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="distill-base-") as tmp:
        path = Path(tmp) / "tree"
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(path), rev], check=True, capture_output=True
        )
        try:
            yield path
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(path)], capture_output=True)


def run_cli(code: Path, args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """`distill ARGS` with the package of the checkout at `code`; fails loudly with the command's stderr."""
    env = os.environ | {"PYTHONPATH": str(code)}
    done = subprocess.run(
        [sys.executable, "-m", "distill.cli", *args], cwd=cwd, env=env, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise RuntimeError(f"distill {' '.join(args)} ({code}) failed:\n{done.stderr[-2000:]}")
    return done
