"""A stage's own output in its flow run's Logs tab, as well as on the terminal.

The stages print with rich (summaries, tables, progress bars); a flow run's Logs tab shows
only what goes through Prefect's run logger. `stage_console()` gives a rich Console whose
file writes to the terminal as before and sends each finished line to the run logger:
colour codes stripped, and lines that redraw the screen (a live progress bar's frames)
left out, so the UI shows what a person would have read, once.
"""

from __future__ import annotations

import io
import logging
import re
import sys
from typing import TextIO

from rich.console import Console

_SGR = re.compile(r"\x1b\[[0-9;]*m")  # colour and style: stripped
_REDRAW = re.compile(r"\x1b\[[0-9;?]*[A-HJKSTfhl]|\r")  # cursor moves, erases: a frame


class RunLogFile(io.TextIOBase):
    """Writes through to `stream`; each complete line that is not a redraw goes to `logger`."""

    def __init__(self, stream: TextIO, logger: logging.Logger | logging.LoggerAdapter) -> None:
        self._stream = stream
        self._logger = logger
        self._pending = ""

    def write(self, text: str) -> int:
        self._stream.write(text)
        self._pending += text
        *lines, self._pending = self._pending.split("\n")
        for line in lines:
            if _REDRAW.search(line):
                continue
            clean = _SGR.sub("", line).rstrip()
            if clean.strip():
                self._logger.info(clean)
        return len(text)

    def flush(self) -> None:
        self._stream.flush()

    def isatty(self) -> bool:
        return self._stream.isatty()

    def fileno(self) -> int:
        return self._stream.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self._stream, "encoding", None) or "utf-8"


def stage_console() -> Console:
    """The console a flow hands its stage: the terminal, and the run's Logs in the UI."""
    from prefect import get_run_logger
    from prefect.exceptions import MissingContextError

    from distillery.console.terminal import console

    try:
        logger = get_run_logger()
    except MissingContextError:
        return console()
    # Text unwrapped even on a terminal: a wrapped line would be two entries in the Logs.
    return console(file=RunLogFile(sys.stdout, logger), soft_wrap=True)
