"""A stage's output reaches its run's logger line by line (no Prefect server needed)."""

import io

from rich.console import Console
from rich.progress import Progress

from distillery.flows.run_log import RunLogFile


class Lines:
    def __init__(self):
        self.lines = []

    def info(self, line):
        self.lines.append(line)


def test_each_finished_line_is_logged_without_colour_and_the_terminal_gets_everything():
    terminal, log = io.StringIO(), Lines()
    out = RunLogFile(terminal, log)
    out.write("\x1b[1m12\x1b[0m verdicts written")
    assert log.lines == []  # not finished yet
    out.write(" in 0.4s\nsecond line\n\n   \npartial")
    assert log.lines == ["12 verdicts written in 0.4s", "second line"]
    assert terminal.getvalue() == (
        "\x1b[1m12\x1b[0m verdicts written in 0.4s\nsecond line\n\n   \npartial"
    )


def test_redrawn_frames_of_a_live_bar_are_left_out():
    log = Lines()
    out = RunLogFile(io.StringIO(), log)
    out.write("\r\x1b[2Ksampling ━━━━━ 3/10\n")
    out.write("\x1b[1A\x1b[2Ksampling ━━━━━ 7/10\n")
    out.write("done: 10 samples\n")
    assert log.lines == ["done: 10 samples"]


def test_a_rich_console_on_it_logs_what_a_reader_would_read():
    log = Lines()
    console = Console(file=RunLogFile(io.StringIO(), log), width=80)
    console.print("[bold]3[/] prompts: [green]2[/] targets")
    with Progress(console=console) as progress:  # not a terminal: drawn once, at the end
        task = progress.add_task("verifying", total=2)
        progress.advance(task, 2)
    console.print("selection sel-123")
    assert log.lines[0] == "3 prompts: 2 targets"
    assert log.lines[-1] == "selection sel-123"
    assert all("\x1b" not in line for line in log.lines)


def test_a_long_line_is_one_log_entry_and_one_line_in_a_log_file(monkeypatch):
    """Rich would break a line longer than its width (80 off a terminal) in two: half a
    sentence per Logs entry, and a log file a grep cannot search. A stage's console and
    the command's console off a terminal keep it whole; tables still fit the width."""
    import prefect

    from distillery.console.terminal import console as terminal_console
    from distillery.flows import run_log

    log = Lines()
    # `stage_console` asks `from prefect import get_run_logger` for the run's logger.
    monkeypatch.setattr(prefect, "get_run_logger", lambda: log, raising=False)
    monkeypatch.setattr(run_log.sys, "stdout", io.StringIO())
    stage = run_log.stage_console()
    text = "search wave 1: " + "5 prompts still open, " * 8
    stage.print(text)
    assert log.lines == [text.rstrip()]

    file = io.StringIO()
    command = terminal_console(file=file, width=80)
    command.print(text)
    assert file.getvalue() == text + "\n"
