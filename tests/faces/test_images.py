"""Image loading: the decompression-bomb check is a header comparison, deterministic under threads."""

from concurrent.futures import ThreadPoolExecutor

import pytest
from PIL import Image

from distill.faces.images import BadImage, load_rgb


@pytest.fixture(scope="module")
def bomb_and_good(tmp_path_factory):
    root = tmp_path_factory.mktemp("bomb")
    Image.new("L", (8200, 8200)).save(root / "bomb.png")  # 67 Mpx > the 60 Mpx default limit
    Image.new("RGB", (64, 64), (200, 150, 120)).save(root / "good.jpg")
    return root / "bomb.png", root / "good.jpg"


def _reason(path, **kwargs) -> str:
    try:
        load_rgb(path, **kwargs)
    except BadImage as err:
        return str(err).split(":")[0]
    return "ok"


def test_bomb_is_refused_before_decoding_and_the_limit_is_a_setting(bomb_and_good):
    bomb, good = bomb_and_good
    assert _reason(bomb) == "bomb" and _reason(good) == "ok"
    assert _reason(good, max_pixels=64 * 64 - 1) == "bomb"  # one pixel over the limit
    assert _reason(good, max_pixels=64 * 64) == "ok"
    assert _reason(bomb, max_pixels=8200 * 8200) == "ok"  # under a raised limit it decodes


def test_bomb_check_holds_in_many_threads(bomb_and_good):
    """The old check (a warnings filter per thread) let a bomb through when another thread left its block."""
    bomb, good = bomb_and_good
    paths = [bomb, good] * 12
    with ThreadPoolExecutor(max_workers=8) as pool:
        for _ in range(3):
            reasons = list(pool.map(_reason, paths))
            assert reasons == ["bomb", "ok"] * 12
