"""Seed family `date`: calendar questions answered with one ISO date and nothing else.

From the seed "Answer only with the ISO date for 'next Monday' from 2025-08-13": the base
model tends to answer "Next Monday is August 18, 2025.", right in substance but wrong in
format, so the verifier wants a bare YYYY-MM-DD equal to the computed date.
"""

from __future__ import annotations

import calendar
import random
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from typing import Any

from distillery.tasks.base import TaskPrompt
from distillery.tasks.seeds_common import Candidate, fill_splits

FAMILY = "date"
N_TRAIN = 300
N_TEST = 150
SEED = 20250818

ISO_PATTERN = r"\d{4}-\d{2}-\d{2}"
# Spelled out rather than taken from calendar.day_name/month_name, which follow the
# process locale: the prompts (and so their ids) must not change with LANG.
WEEKDAYS: tuple[str, ...] = (
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
)
MONTHS: tuple[str, ...] = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)

# Start dates stay in a recent, plausible range; far-off years add nothing but digits.
_FIRST = date(2015, 1, 1)
_LAST = date(2035, 12, 31)

INSTRUCTIONS: tuple[str, ...] = (
    "Answer only with the ISO date (YYYY-MM-DD).",
    "Reply with the date in YYYY-MM-DD format only.",
    "Give only the ISO date.",
)

# (key, question, answer): the key names the problem, so rewordings share it.
Problem = tuple[str, str, date]


def next_weekday(start: date, weekday: int) -> date:
    """The first `weekday` (0 = Monday) strictly after `start`: a Monday asks for a week on."""
    return start + timedelta(days=(weekday - start.weekday() - 1) % 7 + 1)


def previous_weekday(start: date, weekday: int) -> date:
    """The last `weekday` strictly before `start`."""
    return start - timedelta(days=(start.weekday() - weekday - 1) % 7 + 1)


def last_day_of_month(year: int, month: int) -> date:
    return date(year, month, calendar.monthrange(year, month)[1])


def first_weekday_of_month(year: int, month: int, weekday: int) -> date:
    return next_weekday(date(year, month, 1) - timedelta(days=1), weekday)


def _random_date(rng: random.Random) -> date:
    return _FIRST + timedelta(days=rng.randint(0, (_LAST - _FIRST).days))


def _next(rng: random.Random) -> Problem:
    start, wd = _random_date(rng), rng.randrange(7)
    q = rng.choice(
        (
            "What is the date of next {w} from {d}?",
            "What date is the next {w} after {d}?",
            "Starting from {d}, what is the date of the next {w}?",
        )
    )
    return f"next:{wd}:{start}", q.format(w=WEEKDAYS[wd], d=start), next_weekday(start, wd)


def _previous(rng: random.Random) -> Problem:
    start, wd = _random_date(rng), rng.randrange(7)
    q = f"What is the date of the last {WEEKDAYS[wd]} before {start}?"
    return f"prev:{wd}:{start}", q, previous_weekday(start, wd)


def _shift_days(rng: random.Random) -> Problem:
    start = _random_date(rng)
    n = rng.randint(1, 90)
    unit = "day" if n == 1 else "days"
    if rng.random() < 0.5:
        return f"add:{start}:{n}", f"What date is {n} {unit} after {start}?", start + timedelta(n)
    return f"add:{start}:{-n}", f"What date is {n} {unit} before {start}?", start - timedelta(n)


def _shift_weeks(rng: random.Random) -> Problem:
    start = _random_date(rng)
    n = rng.randint(1, 12)
    unit = "week" if n == 1 else "weeks"
    # Same key space as _shift_days: "2 weeks after" and "14 days after" are one problem.
    return (
        f"add:{start}:{7 * n}",
        f"What date is {n} {unit} after {start}?",
        start + timedelta(7 * n),
    )


def _month_end(rng: random.Random) -> Problem:
    year, month = rng.randint(1990, 2040), rng.randint(1, 12)
    q = rng.choice(("What is the last day of {m} {y}?", "What date is the last day of {m} {y}?"))
    return (
        f"eom:{year}:{month}",
        q.format(m=MONTHS[month - 1], y=year),
        last_day_of_month(year, month),
    )


def _first_weekday(rng: random.Random) -> Problem:
    year, month, wd = rng.randint(2015, 2035), rng.randint(1, 12), rng.randrange(7)
    q = f"What is the date of the first {WEEKDAYS[wd]} of {MONTHS[month - 1]} {year}?"
    return f"first:{year}:{month}:{wd}", q, first_weekday_of_month(year, month, wd)


_KINDS: tuple[tuple[Callable[[random.Random], Problem], int], ...] = (
    (_next, 4),
    (_previous, 2),
    (_shift_days, 4),
    (_shift_weeks, 1),
    (_month_end, 2),
    (_first_weekday, 2),
)


def _spec(answer: date) -> dict[str, Any]:
    return {"kind": "regex", "pattern": ISO_PATTERN, "expected": answer.isoformat()}


def _candidates() -> Iterator[Candidate]:
    rng = random.Random(SEED)
    # The seed document's own example goes first so it is always in the suite.
    seed_answer = next_weekday(date(2025, 8, 13), 0)
    yield Candidate(
        "next:0:2025-08-13",
        "Answer only with the ISO date (YYYY-MM-DD) for next Monday from 2025-08-13.",
        _spec(seed_answer),
        seed_answer.isoformat(),
    )
    funcs = [f for f, _ in _KINDS]
    weights = [w for _, w in _KINDS]
    while True:
        key, question, answer = rng.choices(funcs, weights)[0](rng)
        user = f"{question} {rng.choice(INSTRUCTIONS)}"
        yield Candidate(key, user, _spec(answer), answer.isoformat())


def prompts(suite: str) -> list[TaskPrompt]:
    """Exactly N_TRAIN train and N_TEST test prompts, in a fixed order."""
    return fill_splits(suite, FAMILY, _candidates(), N_TRAIN, N_TEST)
