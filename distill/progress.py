"""Progress of long library work: a rich bar on a terminal, a plain line every few seconds in a log."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

console = Console(stderr=True, soft_wrap=True)  # notes keep their paths whole: never broken at 80 columns in a log


@contextlib.contextmanager
def progress_bar(description: str, total: int | None, enabled: bool = True) -> Iterator:
    """Yield an `advance(n)` function; the bar shows done/total, elapsed and remaining time."""
    if not enabled:
        yield lambda n=1: None
        return
    if not console.is_terminal:  # a log file or a pipe: plain lines, not a bar's redraws
        with plain_lines(description, total) as advance:
            yield advance
        return
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task(description, total=total)
        yield lambda n=1: bar.advance(task, n)


LINE_EVERY = 10.0  # seconds between two progress lines in a log


@contextlib.contextmanager
def plain_lines(description: str, total: int | None, every: float = LINE_EVERY) -> Iterator:
    """Progress as one plain line every `every` seconds and one at the end: 'crop x: 512/4000 (P%), 0:41, about
    4:35 left'."""
    start = last = time.monotonic()
    done, shown = 0, -1

    def line() -> None:
        nonlocal shown
        shown = done
        elapsed = time.monotonic() - start
        text = f"{description}: {done:,}" + (f"/{total:,} ({done / total:.0%})" if total else "")
        text += f", {clock(elapsed)}"
        if total and 0 < done < total:
            text += f", about {clock(elapsed / done * (total - done))} left"
        console.print(text, highlight=False, markup=False, soft_wrap=True)

    def advance(n: int = 1) -> None:
        nonlocal done, last
        done += n
        if time.monotonic() - last >= every:
            last = time.monotonic()
            line()

    yield advance
    if shown != done:
        line()


def clock(seconds: float) -> str:
    """'4:05', or '1:02:03' past an hour."""
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes // 60}:{minutes % 60:02d}:{secs:02d}" if minutes >= 60 else f"{minutes}:{secs:02d}"


def quiet_libraries() -> None:
    """Lightning's INFO banners (tips, 'GPU available: False') and warnings about things we do on purpose."""
    import logging
    import warnings

    logging.getLogger("lightning.pytorch.utilities.rank_zero").setLevel(logging.WARNING)
    # torch.export and torch.compile: notes about pytree Enum registration and a CUDA_HOME guess on CPU machines
    for name in ("torch.utils._pytree", "torch.utils.cpp_extension"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message=r".*module\(s\) in eval mode.*")  # the frozen teacher
    warnings.filterwarnings("ignore", message=r".*LeafSpec.*is deprecated.*")
    warnings.filterwarnings("ignore", message=r".*smaller than the logging interval.*")
    # a resumed run's CSV logger: train.py keeps the earlier epochs aside and puts them back, so none are lost
    warnings.filterwarnings("ignore", message=r".*Previous log files in this directory will be deleted.*")
