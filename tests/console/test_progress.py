"""The terminal's progress bars: a total (so an ETA) whenever the work has a bound."""

import io

from rich.console import Console

from distillery.console.progress import sampling_bar


def render(steps) -> str:
    out = io.StringIO()
    console = Console(file=out, width=120, force_terminal=False)
    with sampling_bar(console, "evaluating m") as (set_total, advance):
        steps(set_total, advance)
    return out.getvalue()


def test_a_bar_without_a_total_says_so():
    assert "3/?" in render(lambda set_total, advance: advance(3, 30))


def test_a_total_and_work_found_done_show_as_done_of_total():
    def steps(set_total, advance):
        set_total(16, 6)  # 6 draws were in the warehouse already
        advance(4, 40)  # 4 new ones

    assert "10/16" in render(steps)
