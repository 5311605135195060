"""The consoles the command and its stages print through.

On a terminal rich wraps long lines at its width, as a person reads them. Written to a
file or a pipe (a CI log, `distillery ... > run.log`, a flow run's Logs tab) rich would
break every line longer than 80 columns in two, so that a grep finds half a sentence:
there a line of text stays one line (`soft_wrap`), and only tables are laid out to the
width (they are built to read whole at 80 columns). A flow run's stage console never wraps
text: each line it prints is one entry in the run's Logs, on a terminal too.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console


def console(*, soft_wrap: bool | None = None, **kwargs: Any) -> Console:
    """A rich Console (`kwargs` as rich takes them) that wraps text only on a terminal,
    unless `soft_wrap` says otherwise."""
    out = Console(**kwargs)
    out.soft_wrap = not out.is_terminal if soft_wrap is None else soft_wrap
    return out
