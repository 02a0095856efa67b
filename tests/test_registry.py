import subprocess
import sys

import pytest

from distill.errors import DistillError
from distill.registry import DATASETS, LOSSES, STUDENTS, TEACHERS, Registry


def test_unknown_name_lists_valid_ones():
    with pytest.raises(DistillError, match="valid teachers: .*mini_xception"):
        TEACHERS.get("nope")


def test_registries_hold_the_documented_entries():
    assert {
        "squeezenet1_1",
        "squeezenet1_1_bn",
        "mobilenetv2_100",
        "mobilenetv3_small_100",
        "mobilenetv3_large_100",
    } <= set(STUDENTS.names())
    assert {"label", "kld", "hint"} <= set(LOSSES.names())
    assert {"folder", "pubfig83", "csv", "rafd", "fer2013"} <= set(DATASETS.names())
    assert {"mini_xception", "keras", "vgg_s", "timm"} <= set(TEACHERS.names())


def test_double_registration_is_a_bug():
    reg = Registry("thing", "distill.errors")
    reg.register("a")(lambda: 1)
    with pytest.raises(ValueError):
        reg.register("a")(lambda: 2)


def _cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "distill.cli", *args], capture_output=True, text=True, cwd=cwd)


def test_cli_list_and_user_errors_are_one_line(tmp_path):
    listed = _cli("list", "students")
    assert listed.returncode == 0 and "squeezenet1_1" in listed.stdout
    assert "kld" in _cli("list", "losses").stdout
    bad = _cli("list", "nonsense")
    assert bad.returncode == 2 and "valid:" in bad.stderr and "Traceback" not in bad.stderr
    missing = _cli("train", "--workdir", str(tmp_path))
    assert missing.returncode == 2 and "distill label" in missing.stderr and "Traceback" not in missing.stderr


def test_each_compressor_is_registered_under_its_own_name():
    from distill.registry import COMPRESSORS

    assert {e.name: e.fn.name for e in COMPRESSORS.entries()} == {n: n for n in COMPRESSORS.names()}


def test_every_listed_description_is_a_whole_sentence():
    from distill.registry import REGISTRIES, first_sentence

    assert first_sentence("BWN (Rastegari et al. 2016): binary\n    weights.\n\n    More.") == (
        "BWN (Rastegari et al. 2016): binary weights."
    )
    for registry in REGISTRIES.values():
        for entry in registry.entries():
            assert entry.help.endswith((".", ")")), f"{registry.kind} {entry.name}: {entry.help!r}"
