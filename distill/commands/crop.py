"""`distill crop`: a photo folder (or the demo faces) into its face store in the workspace."""

from __future__ import annotations

from pathlib import Path

from distill.config import CropConfig
from distill.errors import DistillError
from distill.faces.crop import crop
from distill.workspace import Workspace


def run(
    ws: Workspace,
    src: Path | None,
    out: Path | None,
    reader: str = "auto",
    cfg: CropConfig | None = None,
    demo: bool = False,
) -> dict:
    """A photo folder (or, with no folder, the demo faces) into its face store in workspace `ws`;
    the default store is named after the folder, and two folders never share one (Workspace.store_for)."""
    if demo or src is None:
        if src is not None:
            raise DistillError("give SRC or --demo, not both")
        from distill.datasets.demo import demo_samples

        store = out or ws.dir("faces") / "skimage-demo.h5"
        return crop(Path("skimage-demo"), store, cfg, reader="skimage", samples=demo_samples(ws.root))
    if not src.exists():
        raise DistillError(f"{src}: no such folder")
    return crop(src, out or ws.store_for(src), cfg, reader=reader)
