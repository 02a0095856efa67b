"""The photo conditions eval scores under: dark and warm, or small in the frame; the plain set untouched."""

import numpy as np
from PIL import Image

from distill.config import CONDITIONS
from distill.datasets.readers import Sample
from distill.evaluate.conditions import CHANGES, dark, small, under


def test_every_condition_the_settings_offer_is_implemented():
    assert set(CONDITIONS) == {"plain", *CHANGES}


def test_dark_is_darker_and_warmer():
    grey = np.full((8, 8, 3), 128, np.uint8)
    out = dark(grey).astype(int)
    assert out.mean() < 60 and out[..., 0].mean() > out[..., 2].mean() * 1.4  # under-exposed, red over blue
    assert dark(np.full((2, 2, 3), 255, np.uint8))[0, 0].tolist() == [255, 217, 166]  # white takes the light's tint


def test_small_shrinks_the_photo_inside_a_frame_of_its_size():
    rgb = np.zeros((40, 80, 3), np.uint8)
    rgb[:, :40] = 255  # left half white
    out = small(rgb)
    assert out.shape == rgb.shape
    inner = out[15:25, 30:50]  # the shrunk photo, 10 x 20 px, in the middle
    assert (inner[:, :10] == 255).all() and (inner[:, 10:] == 0).all()
    assert (out[0, 0] == 127).all()  # the frame around it: the photo's mean colour


def test_under_changes_each_photo_keeps_keys_and_labels_and_leaves_unreadable_ones(tmp_path):
    Image.fromarray(np.full((30, 30, 3), 200, np.uint8)).save(tmp_path / "a.png")
    (tmp_path / "bad.jpg").write_bytes(b"")
    samples = [Sample("a.png", tmp_path / "a.png", label="happiness"), Sample("bad.jpg", tmp_path / "bad.jpg")]
    assert under("plain", samples) is samples
    changed = under("dark", samples)
    assert [s.key for s in changed] == ["a.png", "bad.jpg"] and changed[0].label == "happiness"
    assert changed[0].pixels.mean() < 200 and changed[0].meta["condition"] == "dark"
    assert changed[1] is samples[1]  # crop records it with its reason
