"""Typer options derived from the config dataclasses (distill.settings), so each setting is written once.

A command declares a parameter typed with a Settings dataclass (`cfg: TrainConfig`); `@from_settings` replaces it
by one option per CLI field of that dataclass (flag, default and help text, with the valid range appended) and
hands the command a ready, validated instance.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import typing
from collections.abc import Callable
from typing import Annotated, Any

import typer

from distill.settings import Settings, flag_of, valid_range


def _help(f: dataclasses.Field) -> str:
    text = f.metadata["help"]
    rng = valid_range(f.metadata)
    extra = [f"valid: {rng}"] if rng else []
    if f.metadata.get("none"):
        extra.append(f"unset: {f.metadata['none']}")
    return f"{text} ({'; '.join(extra)})" if extra else text


def _option(f: dataclasses.Field, hint: Any) -> inspect.Parameter:
    flag = flag_of(f)
    is_flag = hint is bool or set(typing.get_args(hint)) == {bool, type(None)}  # bool | None: unset is a choice
    names = [f"{flag}/--no-{flag[2:]}"] if is_flag else [flag]
    default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
    annotation = Annotated[hint, typer.Option(*names, help=_help(f), show_default=default is not None)]
    return inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)


def cli_fields(cls: type) -> list[dataclasses.Field]:
    return [f for f in dataclasses.fields(cls) if f.metadata.get("cli", True)]


def from_settings(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Replace each Settings-typed parameter of a typer command by that dataclass's options (see module doc)."""
    hints = typing.get_type_hints(fn, include_extras=True)
    params: list[inspect.Parameter] = []
    groups: dict[str, tuple[type, list[str]]] = {}
    for p in inspect.signature(fn).parameters.values():
        cls = hints.get(p.name)
        if isinstance(cls, type) and issubclass(cls, Settings):
            own = typing.get_type_hints(cls)
            fields = cli_fields(cls)
            params += [_option(f, own[f.name]) for f in fields]
            groups[p.name] = (cls, [f.name for f in fields])
        else:
            params.append(p.replace(kind=inspect.Parameter.KEYWORD_ONLY, annotation=hints.get(p.name, p.annotation)))

    @functools.wraps(fn)
    def command(**kwargs: Any) -> Any:
        for name, (cls, names) in groups.items():
            kwargs[name] = cls(**{n: kwargs.pop(n) for n in names})
        return fn(**kwargs)

    command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]  (duplicate names raise)
    command.__annotations__ = {p.name: p.annotation for p in params}
    del command.__wrapped__  # typer must read the new signature, not the function's own
    return command
