"""Real SIGKILLs of `crop` and `label` at chosen points, and the check that a re-run equals an uninterrupted run.

The child runs the real code; only its pace is slowed (a sleep after each crash-safe part) so a kill can land
between parts, inside a part write, or during the final merge, as the chosen delay decides."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np

_CHILD = """
import sys, time
from pathlib import Path
import distill.faces.store as fs
import distill.labelling.label as lab
from distill.config import CropConfig
from distill.faces.crop import crop

pace, what, src, out = float(sys.argv[1]), sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4])
for module, name in ((fs, "write_part"), (lab, "write_shard")):
    real = getattr(module, name)
    setattr(module, name, lambda *a, _real=real, **k: (_real(*a, **k), time.sleep(pace))[0])
if what == "crop":
    crop(src, out, CropConfig(size=64, part_images=2), show_progress=False)
else:
    lab.label(src, out, lab.LabelConfig(teacher="mini_xception", views=2, part_rows=2), show_progress=False)
"""


def run_and_kill(what: str, src: Path, out: Path, after_parts: int, delay: float, pace: float = 0.3) -> bool:
    """Start `what` (crop|label) in a child; SIGKILL it `delay` s after `after_parts` parts exist.
    Returns True when the kill landed before the child finished."""
    child = subprocess.Popen([sys.executable, "-c", _CHILD, str(pace), what, str(src), str(out)])
    parts = Path(f"{out}.parts")
    deadline = time.monotonic() + 180
    while len(list(parts.glob("part-*"))) < after_parts and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(delay)
    killed = child.poll() is None
    child.send_signal(signal.SIGKILL)
    child.wait()
    return killed


def rerun(what: str, src: Path, out: Path) -> None:
    from distill.config import CropConfig, LabelConfig
    from distill.faces.crop import crop
    from distill.labelling.label import label

    if what == "crop":
        crop(src, out, CropConfig(size=64, part_images=2), show_progress=False)
    else:
        label(src, out, LabelConfig(teacher="mini_xception", views=2, part_rows=2), show_progress=False)


def assert_same_output(what: str, a: Path, b: Path) -> None:
    """Equal rows, in the same order, with no duplicates or gaps; both files open as valid HDF5."""
    names = ("key", "pixels", "box") if what == "crop" else ("keys", "logits", "probs", "views/params", "views/logits")
    with h5py.File(a) as f, h5py.File(b) as g:
        for name in names:
            x, y = f[name][()], g[name][()]
            assert x.shape == y.shape, name
            if x.dtype.kind in "fc":
                np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-5, err_msg=name)
            else:
                assert (x == y).all(), name
        if what == "crop":
            keys = [k.decode() if isinstance(k, bytes) else k for k in f["key"][()]]
            assert len(keys) == len(set(keys))
            assert f.attrs["fingerprint"] == g.attrs["fingerprint"]


@contextlib.contextmanager
def killed_on_call(module, name: str, n: int):
    """Simulate a kill: the n-th call of module.name raises KeyboardInterrupt (earlier calls run for real)."""
    real, calls = getattr(module, name), {"n": 0}

    def dying(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == n:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    setattr(module, name, dying)
    try:
        yield
    finally:
        setattr(module, name, real)
