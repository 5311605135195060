"""Rich progress bars: sampling (samples/s and tokens/s) and plain counts (items/s)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn


def _bar(console: Console) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeRemainingColumn(),
        console=console,
    )


@contextmanager
def sampling_bar(
    console: Console, label: str
) -> Iterator[tuple[Callable[[int], None], Callable[[int, int], None]]]:
    """Yield (set_total(n, done=None), advance(samples, tokens)) callbacks bound to one bar;
    `done`, when given, sets how far the bar is (work found done already counts)."""
    progress = _bar(console)
    task = progress.add_task(label, total=None, rate="")
    started = time.perf_counter()
    counts = {"samples": 0, "tokens": 0}

    def set_total(n: int, done: int | None = None) -> None:
        progress.update(task, total=n, completed=done)

    def advance(samples: int, tokens: int) -> None:
        counts["samples"] += samples
        counts["tokens"] += tokens
        dt = max(time.perf_counter() - started, 1e-9)
        rate = f"{counts['samples'] / dt:.1f} samples/s · {counts['tokens'] / dt:.0f} tok/s"
        progress.update(task, advance=samples, rate=rate)

    with progress:
        yield set_total, advance


@contextmanager
def count_bar(
    console: Console,
    label: str,
    total: int,
    on_count: Callable[[int, int], None] | None = None,
) -> Iterator[Callable[[int], None]]:
    """A bar over `total` items with items/s; yields advance(n). `on_count(done, total)`
    hears of every advance too (a flow's progress artifact)."""
    progress = _bar(console)
    task = progress.add_task(label, total=total, rate="")
    started = time.perf_counter()
    done = [0]

    def advance(n: int) -> None:
        done[0] += n
        rate = done[0] / max(time.perf_counter() - started, 1e-9)
        progress.update(task, advance=n, rate=f"{rate:.1f}/s")
        if on_count is not None:
            on_count(done[0], total)

    with progress:
        yield advance
