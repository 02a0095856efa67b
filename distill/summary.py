"""What a command prints when it is done: one 'key: value' line each, full paths, numbers rounded."""

from __future__ import annotations

from rich.console import Console

console = Console(soft_wrap=True, emoji=False)  # soft wrap: a long path is printed whole, never cut


def format_value(value: object) -> str:
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict):
        return ", ".join(f"{k} {format_value(v)}" for k, v in value.items()) or "none"
    if isinstance(value, (list, tuple)):
        return ", ".join(format_value(v) for v in value) or "none"
    return str(value)


def format_facts(title: str, facts: dict) -> str:
    width = max((len(str(k)) for k in facts), default=0)
    lines = [f"{title}:"]
    for key, value in facts.items():
        lines.append(f"  {str(key).ljust(width)}  {format_value(value)}")
    return "\n".join(lines)


def print_facts(title: str, facts: dict) -> None:
    console.print(format_facts(title, facts), highlight=False, markup=False)
