"""Measured results live in docs/results.md (and benchmarks/README.md), never in the code: no comment, docstring or
help text of the package quotes a percentage, a number of points or an 'Nx faster'."""

import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "distill"
FIGURE = re.compile(
    r"(?<![:.\w{])\d+(\.\d+)?\s?%(?![}\w])"  # 62.5%, 6 % (not a format spec such as {x:.1%})
    r"|\b\d+(\.\d+)? points\b"
    r"|\b\d+(\.\d+)?x (faster|slower|smaller|larger|bigger|more|less)\b"
)


def test_no_measured_figure_in_the_code():
    found = [
        f"{path.relative_to(PACKAGE.parent)}:{n}: {line.strip()}"
        for path in sorted(PACKAGE.rglob("*.py"))
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if FIGURE.search(line)
    ]
    assert not found, "\n".join(found)


def test_the_pattern_finds_what_it_is_meant_to():
    for text in ("62.52% / 48.59%", "10.6 points more accurate", "2.9x faster", "(6% of a step)"):
        assert FIGURE.search(text), text
    for text in ('f"{share:.0%}"', '"accuracy % |"', "x 1.25", "{100 * s:.2f}%"):
        assert not FIGURE.search(text), text
