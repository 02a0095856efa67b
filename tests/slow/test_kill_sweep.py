"""The full crash-resume sweep (issue #8): 12 SIGKILL points per command, chosen at random but seeded, each
followed by a re-run that must equal an uninterrupted run. Slow (~3 min); run with `pytest -m slow`."""

import random

import pytest

from tests.killing import assert_same_output, rerun, run_and_kill

# 13 photos in parts of 2 images (7 crop parts) and 13 faces in parts of 2 rows (7 label parts), 0.3 s pacing:
# 0..6 finished parts plus 0..0.35 s lands kills between parts, inside writes and in the final merge.
_rng = random.Random(8)
POINTS = [(_rng.randint(0, 6), round(_rng.uniform(0, 0.35), 3)) for _ in range(12)]


@pytest.mark.slow
@pytest.mark.parametrize("what", ["crop", "label"])
def test_sweep(tmp_path, face_photos, face_store, what):
    src = face_photos if what == "crop" else face_store
    reference = tmp_path / "whole.h5"
    rerun(what, src, reference)
    landed = 0
    for i, (after_parts, delay) in enumerate(POINTS):
        out = tmp_path / f"killed-{i}.h5"
        landed += run_and_kill(what, src, out, after_parts, delay)
        rerun(what, src, out)
        assert_same_output(what, reference, out)
    assert landed >= 10, f"only {landed} of {len(POINTS)} kills landed before the run finished"
