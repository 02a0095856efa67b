"""Settings written once: each config field holds its default, help text and valid range.

The config dataclasses (CropConfig, LabelConfig, TrainConfig, ...) subclass `Settings` and declare their fields with
`setting(...)`. Making one checks every field against its range, so a bad value is refused before any work starts,
whether it came from the command line, a saved run or library code; `distill.options` derives the CLI's options
from the same fields.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

from distill.errors import DistillError


def setting(
    default: Any,
    help: str,
    *,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    lt: float | None = None,
    choices: Sequence[str] | None = None,
    flag: str | None = None,
    cli: bool = True,
    none: str | None = None,
) -> Any:
    """A config field. ge/gt/le/lt bound a number, `choices` a string; `flag` is the CLI name (default
    --field-name); cli=False keeps it out of the command line; `none` says what None means (e.g. 'all faces')."""
    meta = {"help": help, "ge": ge, "gt": gt, "le": le, "lt": lt, "choices": choices, "flag": flag, "cli": cli}
    meta["none"] = none
    if isinstance(default, (list, dict, set)) or dataclasses.is_dataclass(default):
        return dataclasses.field(default_factory=lambda: _copy(default), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def _copy(value: Any) -> Any:
    return dataclasses.replace(value) if dataclasses.is_dataclass(value) else type(value)(value)


def flag_of(f: dataclasses.Field) -> str:
    return f.metadata.get("flag") or "--" + f.name.replace("_", "-")


def valid_range(meta: dict) -> str:
    """'>= 1', 'in (0, 1)', 'one of adamw, sgd', or '' when anything goes."""
    if meta.get("choices"):
        return "one of " + ", ".join(meta["choices"])
    low = (f"[{meta['ge']}" if meta.get("ge") is not None else f"({meta['gt']}") if _has_low(meta) else None
    high = (f"{meta['le']}]" if meta.get("le") is not None else f"{meta['lt']})") if _has_high(meta) else None
    if low and high:
        return f"in {low}, {high}"
    if low:
        return f"{'>=' if meta.get('ge') is not None else '>'} {low[1:]}"
    if high:
        return f"{'<=' if meta.get('le') is not None else '<'} {high[:-1]}"
    return ""


def _has_low(meta: dict) -> bool:
    return meta.get("ge") is not None or meta.get("gt") is not None


def _has_high(meta: dict) -> bool:
    return meta.get("le") is not None or meta.get("lt") is not None


def out_of_range(value: Any, meta: dict) -> bool:
    if value is None or isinstance(value, bool):
        return False
    if meta.get("choices"):
        return value not in meta["choices"]
    if not isinstance(value, (int, float)):
        return False
    if math.isnan(value):
        return True
    return (
        (meta.get("ge") is not None and value < meta["ge"])
        or (meta.get("gt") is not None and value <= meta["gt"])
        or (meta.get("le") is not None and value > meta["le"])
        or (meta.get("lt") is not None and value >= meta["lt"])
    )


def check_value(name: str, value: Any, meta: dict) -> None:
    """Refuse `value` of the setting shown as `name` when it lies outside its range."""
    if out_of_range(value, meta):
        raise DistillError(f"{name} {value}: must be {valid_range(meta)}")


class Settings:
    """Base of the config dataclasses: each field is checked against its range when the object is made (also by
    dataclasses.replace); subclasses add checks that tie fields together in `check`."""

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            check_value(flag_of(f), getattr(self, f.name), f.metadata)
        self.check()

    def check(self) -> None:
        """Checks across fields (e.g. a stage shorter than the run); the default has none."""

    @classmethod
    def known(cls, saved: dict) -> Any:
        """An instance from a saved dict; keys this version does not know are ignored."""
        names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        return cls(**{k: v for k, v in saved.items() if k in names})
