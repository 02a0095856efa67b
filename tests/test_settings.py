"""Settings: ranges written once, checked on construction, shown in --help; options derived from them."""

import dataclasses
import inspect

import pytest

from distill.config import CompressConfig, TrainConfig
from distill.errors import DistillError
from distill.options import from_settings
from distill.settings import out_of_range, valid_range


@pytest.mark.parametrize(
    ("meta", "text", "inside", "outside"),
    [
        ({"ge": 1}, ">= 1", [1, 5], [0, -1]),
        ({"gt": 0, "le": 100}, "in (0, 100]", [1e-9, 100], [0, 100.5, float("nan")]),
        ({"ge": 0, "lt": 1}, "in [0, 1)", [0, 0.999], [1, -0.1]),
        ({"choices": ("a", "b")}, "one of a, b", ["a"], ["c"]),
    ],
)
def test_ranges_read_as_they_check(meta, text, inside, outside):
    assert valid_range(meta) == text
    assert not any(out_of_range(v, meta) for v in inside)
    assert all(out_of_range(v, meta) for v in outside)


def test_construction_and_replace_check_every_field():
    with pytest.raises(DistillError, match=r"--batch-size 0: must be >= 1"):
        TrainConfig(batch_size=0)
    with pytest.raises(DistillError, match=r"--lr -1: must be in \(0, 10\]"):
        dataclasses.replace(TrainConfig(), lr=-1)
    assert TrainConfig(limit=None).limit is None  # an unset optional setting is not range-checked


def test_saved_configs_of_other_versions_load():
    saved = dataclasses.asdict(CompressConfig("prune:0.5")) | {"a_setting_we_dropped": 3}
    assert CompressConfig.known(saved) == CompressConfig("prune:0.5")


def test_options_are_derived_from_the_dataclass():
    def command(cfg: CompressConfig, model: str = "run"):
        return cfg, model

    derived = from_settings(command)
    params = inspect.signature(derived).parameters
    cli = [f.name for f in dataclasses.fields(CompressConfig) if f.metadata.get("cli", True)]
    assert list(params) == [*cli, "model"]
    cfg, model = derived(**{n: p.default for n, p in params.items()})
    assert cfg == CompressConfig() and model == "run"
