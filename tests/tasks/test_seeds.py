"""The built-in seeds suite: exact counts, clean splits, valid specs, and right answers.

The answer checks recompute every expected value a second way (parsing the prompt text
and solving it independently), so a bug in a generator shows up as a mismatch here
rather than as a model being marked wrong for a right answer.
"""

from __future__ import annotations

import builtins
import copy
import json
import math
import re
from collections import Counter
from datetime import date, timedelta
from typing import Any

import jsonschema
import pytest

from distillery.filters.spec import validate_spec
from distillery.tasks import seeds_code, seeds_date, seeds_json, seeds_number, seeds_summary
from distillery.tasks.base import TEST, TRAIN, TaskPrompt
from distillery.tasks.suite_seeds import FAMILIES, SeedsSuite

# Chosen once; a change here should be a deliberate decision, not a side effect.
EXPECTED_COUNTS: dict[tuple[str, str], int] = {
    ("number", TRAIN): 300,
    ("number", TEST): 150,
    ("date", TRAIN): 300,
    ("date", TEST): 150,
    ("json", TRAIN): 300,
    ("json", TEST): 150,
    ("code", TRAIN): 41,
    ("code", TEST): 15,
    ("summary", TRAIN): 300,
    ("summary", TEST): 150,
}

EMOJI = re.compile("[\U0001f000-\U0001faff\u2600-\u27bf\ufe0f\u200d]")
SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


@pytest.fixture(scope="module")
def suite_prompts() -> list[TaskPrompt]:
    return SeedsSuite().prompts()


def _by_family(prompts: list[TaskPrompt], family: str) -> list[TaskPrompt]:
    return [p for p in prompts if p.family == family]


def _user(prompt: TaskPrompt) -> str:
    return prompt.messages[-1][1]


def _spec(prompt: TaskPrompt) -> dict[str, Any]:
    return json.loads(prompt.verifier)


# --- the suite as a whole ---------------------------------------------------------------


def test_suite_identity() -> None:
    assert SeedsSuite.name == "seeds"
    assert FAMILIES == ("number", "date", "json", "code", "summary")


def test_exact_counts_per_family_and_split(suite_prompts: list[TaskPrompt]) -> None:
    counts = Counter((p.family, p.split) for p in suite_prompts)
    assert dict(counts) == EXPECTED_COUNTS
    assert len(suite_prompts) == sum(EXPECTED_COUNTS.values())


def test_families_come_in_order_and_ids_are_unique(suite_prompts: list[TaskPrompt]) -> None:
    order = [p.family for p in suite_prompts]
    assert [f for i, f in enumerate(order) if i == 0 or order[i - 1] != f] == list(FAMILIES)
    assert len({p.prompt_id for p in suite_prompts}) == len(suite_prompts)
    assert all(p.suite == "seeds" for p in suite_prompts)


def test_output_is_deterministic(suite_prompts: list[TaskPrompt]) -> None:
    again = SeedsSuite().prompts()
    assert again == suite_prompts
    assert [p.prompt_id for p in again] == [p.prompt_id for p in suite_prompts]


@pytest.mark.parametrize("family", FAMILIES)
def test_splits_share_no_prompt(suite_prompts: list[TaskPrompt], family: str) -> None:
    prompts = _by_family(suite_prompts, family)
    train = [p for p in prompts if p.split == TRAIN]
    test = [p for p in prompts if p.split == TEST]
    assert not {p.prompt_id for p in train} & {p.prompt_id for p in test}
    assert not {_user(p) for p in train} & {_user(p) for p in test}
    # No user text repeats inside a family either.
    assert len({_user(p) for p in prompts}) == len(prompts)


def test_every_spec_is_valid(suite_prompts: list[TaskPrompt]) -> None:
    kinds = {
        "number": "answer",
        "date": "regex",
        "json": "json_schema",
        "code": "code_tests",
        "summary": "style",
    }
    for p in suite_prompts:
        spec = validate_spec(_spec(p), p.prompt_id)
        assert spec["kind"] == kinds[p.family]
        assert p.messages == (("user", _user(p)),)


def test_prompts_are_short(suite_prompts: list[TaskPrompt]) -> None:
    # SmolLM2-135M is sampled on these; long prompts waste its small context.
    for p in suite_prompts:
        limit = 150 if p.family == "summary" else 60
        assert len(_user(p).split()) <= limit, _user(p)


# --- number -----------------------------------------------------------------------------


def _solve_number(question: str) -> int:
    """An independent solver for every question form the number family emits."""
    ints = [int(x) for x in re.findall(r"\d+", question)]
    forms: list[tuple[str, Any]] = [
        (r"What is \d+ (\+|plus) \d+\?$", lambda a, b: a + b),
        (r"Add \d+ and \d+\.$", lambda a, b: a + b),
        (r"What is \d+ (-|minus) \d+\?$", lambda a, b: a - b),
        (r"Subtract \d+ from \d+\.$", lambda b, a: a - b),
        (r"What is \d+ (\*|times) \d+\?$", lambda a, b: a * b),
        (r"Multiply \d+ by \d+\.$", lambda a, b: a * b),
        (r"What is \d+ (/|divided by) \d+\?$", lambda a, b: a / b),
        (r"What('s| is) the factorial of \d+\?$", math.factorial),
        (r"What is \d+ squared\?$", lambda a: a * a),
        (r"What is \d+ cubed\?$", lambda a: a**3),
        (r"What is \d+(\^| to the power of )\d+\?$", lambda a, b: a**b),
        (r"What is the greatest common divisor of \d+ and \d+\?$", math.gcd),
        (r"What is the least common multiple of \d+ and \d+\?$", math.lcm),
        (r"What is the sum of [\d, ]+ and \d+\?$", lambda *xs: sum(xs)),
        (r"What is \d+(%| percent) of \d+\?$", lambda p, w: p * w / 100),
        (r"What is the remainder when \d+ is divided by \d+\?$", lambda a, b: a % b),
        (r"What is the square root of \d+\?$", math.sqrt),
    ]
    for pattern, solve in forms:
        if re.fullmatch(pattern, question):
            value = solve(*ints)
            assert value == int(value), f"not a whole answer: {question}"
            return int(value)
    raise AssertionError(f"no solver for {question!r}")


def test_number_answers_are_right(suite_prompts: list[TaskPrompt]) -> None:
    for p in _by_family(suite_prompts, "number"):
        spec = _spec(p)
        assert spec == {
            "kind": "answer",
            "expected": spec["expected"],
            "match": "numeric",
            "strict": True,
        }
        question, _, instruction = _user(p).rpartition("? ")
        if not question:  # "Add 3 and 4. Respond ..." style
            question, _, instruction = _user(p).partition(". ")
            question += "."
        else:
            question += "?"
        assert instruction in seeds_number.INSTRUCTIONS
        assert spec["expected"] == str(_solve_number(question)) == p.reference


def test_number_hand_checked(suite_prompts: list[TaskPrompt]) -> None:
    by_text = {_user(p): _spec(p)["expected"] for p in _by_family(suite_prompts, "number")}
    assert by_text["What is the factorial of 5? Respond with a number only."] == "120"
    assert _solve_number("What is 9 to the power of 5?") == 59049
    assert _solve_number("What is 25% of 80?") == 20


# --- date -------------------------------------------------------------------------------

WEEKDAY = {name: i for i, name in enumerate(seeds_date.WEEKDAYS)}
MONTH = {name: i + 1 for i, name in enumerate(seeds_date.MONTHS)}


def _iso(text: str) -> date:
    return date.fromisoformat(text)


def _walk(start: date, step: int, weekday: int) -> date:
    """Day-by-day search, deliberately unlike the modular arithmetic under test."""
    day = start + timedelta(step)
    while day.weekday() != weekday:
        day += timedelta(step)
    return day


def _solve_date(question: str) -> date:
    d = r"(\d{4}-\d{2}-\d{2})"
    if m := re.search(rf"next (\w+) (?:from|after) {d}", question):
        return _walk(_iso(m[2]), 1, WEEKDAY[m[1]])
    if m := re.search(rf"Starting from {d}, what is the date of the next (\w+)\?", question):
        return _walk(_iso(m[1]), 1, WEEKDAY[m[2]])
    if m := re.search(rf"last (\w+) before {d}", question):
        return _walk(_iso(m[2]), -1, WEEKDAY[m[1]])
    if m := re.search(rf"(\d+) (days?|weeks?) (after|before) {d}", question):
        n = int(m[1]) * (7 if m[2].startswith("week") else 1)
        return _iso(m[4]) + timedelta(n if m[3] == "after" else -n)
    if m := re.search(r"last day of (\w+) (\d{4})", question):
        month, year = MONTH[m[1]], int(m[2])
        first_of_next = date(year + month // 12, month % 12 + 1, 1)
        return first_of_next - timedelta(1)
    if m := re.search(r"first (\w+) of (\w+) (\d{4})", question):
        return _walk(date(int(m[3]), MONTH[m[2]], 1) - timedelta(1), 1, WEEKDAY[m[1]])
    raise AssertionError(f"no solver for {question!r}")


def test_date_answers_are_right(suite_prompts: list[TaskPrompt]) -> None:
    for p in _by_family(suite_prompts, "date"):
        spec = _spec(p)
        assert spec["pattern"] == r"\d{4}-\d{2}-\d{2}"
        assert re.fullmatch(spec["pattern"], spec["expected"])
        assert spec["expected"] == _solve_date(_user(p)).isoformat() == p.reference


def test_date_hand_checked(suite_prompts: list[TaskPrompt]) -> None:
    seed = "Answer only with the ISO date (YYYY-MM-DD) for next Monday from 2025-08-13."
    by_text = {_user(p): _spec(p)["expected"] for p in _by_family(suite_prompts, "date")}
    assert by_text[seed] == "2025-08-18"
    assert seeds_date.next_weekday(date(2025, 8, 13), 0) == date(2025, 8, 18)
    # "Next Wednesday" from a Wednesday is a week later, never the same day.
    assert seeds_date.next_weekday(date(2025, 8, 13), 2) == date(2025, 8, 20)
    assert seeds_date.previous_weekday(date(2025, 8, 13), 2) == date(2025, 8, 6)
    assert seeds_date.previous_weekday(date(2025, 8, 13), 4) == date(2025, 8, 8)
    assert seeds_date.last_day_of_month(2024, 2) == date(2024, 2, 29)
    assert seeds_date.last_day_of_month(2000, 2) == date(2000, 2, 29)
    assert seeds_date.last_day_of_month(2100, 2) == date(2100, 2, 28)
    assert seeds_date.last_day_of_month(2025, 12) == date(2025, 12, 31)
    assert seeds_date.first_weekday_of_month(2025, 9, 0) == date(2025, 9, 1)
    assert seeds_date.first_weekday_of_month(2025, 9, 6) == date(2025, 9, 7)


# --- json -------------------------------------------------------------------------------


def _json_entity(prompt: TaskPrompt) -> str:
    """The thing a json prompt is about; a city asked either way is one entity."""
    expected = _spec(prompt)["expected"]
    if "city" in expected:
        return f"city:{expected['city']}"
    if "capital" in expected:
        return f"city:{expected['capital']}"
    if "element" in expected:
        return f"element:{expected['element']}"
    if "word" in expected:
        return f"word:{expected['word']}"
    if "square" in expected:
        return f"n:{expected['n']}"
    return f"pair:{min(expected['a'], expected['b'])}:{max(expected['a'], expected['b'])}"


def test_json_answers_are_right(suite_prompts: list[TaskPrompt]) -> None:
    cities = dict(seeds_json.CITY_COUNTRY)
    capitals = dict(seeds_json.COUNTRY_CAPITAL)
    elements = {name: (symbol, number) for name, symbol, number in seeds_json.ELEMENTS}
    for p in _by_family(suite_prompts, "json"):
        spec = _spec(p)
        expected = spec["expected"]
        jsonschema.validate(expected, spec["schema"])
        # The stored spec is canonical JSON (sorted keys); the prompt keeps its own order.
        keys = re.search(r"\{([^}]*)\}", _user(p))
        assert keys is not None
        assert set(keys[1].split(", ")) == set(spec["schema"]["required"]) == set(expected)
        assert list(json.loads(p.reference)) == keys[1].split(", ")
        assert json.loads(p.reference) == expected
        if "city" in expected:
            assert cities[expected["city"]] == expected["country"]
        elif "capital" in expected:
            assert capitals[expected["country"]] == expected["capital"]
        elif "element" in expected:
            symbol, number = elements[expected["element"]]
            assert (expected["symbol"], expected["atomic_number"]) == (symbol, number)
        elif "word" in expected:
            word = expected["word"]
            assert expected["length"] == len(word)
            assert expected["reversed"] == "".join(reversed(word))
        elif "square" in expected:
            n = expected["n"]
            assert expected["square"] == n * n
            assert expected["is_even"] is (n % 2 == 0)
        else:
            assert expected["sum"] == expected["a"] + expected["b"]
            assert expected["product"] == expected["a"] * expected["b"]


def test_json_hand_checked(suite_prompts: list[TaskPrompt]) -> None:
    by_text = {_user(p): _spec(p)["expected"] for p in _by_family(suite_prompts, "json")}
    paris = by_text["Return valid JSON with keys {city, country} for city=Paris."]
    assert paris == {"city": "Paris", "country": "France"}
    assert dict(seeds_json.COUNTRY_CAPITAL)["Japan"] == "Tokyo"
    assert ("Iron", "Fe", 26) in seeds_json.ELEMENTS
    assert seeds_json.ELEMENTS[-1] == ("Tin", "Sn", 50)
    assert [n for _, _, n in seeds_json.ELEMENTS] == list(range(1, 51))


def test_json_knowledge_has_no_duplicates() -> None:
    assert len(seeds_json.CITY_COUNTRY) >= 120
    assert len(seeds_json.COUNTRY_CAPITAL) >= 100
    assert len({c for c, _ in seeds_json.CITY_COUNTRY}) == len(seeds_json.CITY_COUNTRY)
    assert len({c for c, _ in seeds_json.COUNTRY_CAPITAL}) == len(seeds_json.COUNTRY_CAPITAL)
    assert len(set(seeds_json.WORDS)) == len(seeds_json.WORDS)


def test_json_entities_stay_in_one_split(suite_prompts: list[TaskPrompt]) -> None:
    prompts = _by_family(suite_prompts, "json")
    train = {_json_entity(p) for p in prompts if p.split == TRAIN}
    test = {_json_entity(p) for p in prompts if p.split == TEST}
    assert not train & test
    # Every template shows up on both sides, so the test split measures all of them.
    templates: dict[str, set[tuple[str, ...]]] = {TRAIN: set(), TEST: set()}
    for p in prompts:
        templates[p.split].add(tuple(_spec(p)["expected"]))
    assert templates[TRAIN] == templates[TEST]
    assert len(templates[TEST]) == 6


# --- code -------------------------------------------------------------------------------


def _is_plain_json(value: Any) -> bool:
    if value is None or isinstance(value, bool | int | str):
        return True
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, list):
        return all(_is_plain_json(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _is_plain_json(v) for k, v in value.items())
    return False


def _load(source: str, name: str) -> Any:
    namespace: dict[str, Any] = {}
    exec(compile(source, f"<{name}>", "exec"), namespace)
    return namespace[name]


def _passes(fn: Any, case: dict[str, Any]) -> bool:
    args = copy.deepcopy(case["args"])
    if "raises" in case:
        try:
            fn(*args)
        except getattr(builtins, case["raises"]):
            return True
        except Exception:
            return False
        return False
    try:
        result = fn(*args)
    except Exception:
        return False
    # Compare as JSON would carry it, and the type too, so True never passes for 1.
    return result == case["expected"] and type(result) is type(case["expected"])


def test_code_has_the_seed_functions_and_enough_others() -> None:
    names = [t.name for t in seeds_code.TASKS]
    assert len(names) == len(set(names)) >= 36
    assert {"is_palindrome", "int_to_roman", "factorial", "slugify"} <= set(names)
    assert set(names) == set(seeds_code.REFERENCE_SOLUTIONS)


@pytest.mark.parametrize("task", seeds_code.TASKS, ids=lambda t: t.name)
def test_code_reference_passes_its_own_cases(task: seeds_code.CodeTask) -> None:
    assert len(task.cases) >= 5
    fn = _load(seeds_code.REFERENCE_SOLUTIONS[task.name], task.name)
    for case in task.cases:
        assert _is_plain_json(case["args"]), case
        assert "expected" not in case or _is_plain_json(case["expected"]), case
        assert json.loads(json.dumps(case)) == case
        assert _passes(fn, case), f"{task.name}{tuple(case['args'])} fails {case}"
    # A constant answer must not pass: each task's cases have at least two outcomes.
    outcomes = {json.dumps(c.get("expected", c.get("raises"))) for c in task.cases}
    assert len(outcomes) >= 2
    assert not all(_passes(lambda *_: None, c) for c in task.cases)


WRONG_SOLUTIONS: dict[str, str] = {
    # Forgets to drop spaces and punctuation: the seed's own "before" example.
    "is_palindrome": "def is_palindrome(s):\n    return s.lower() == s.lower()[::-1]\n",
    # Additive numerals only (IIII for 4).
    "int_to_roman": (
        "def int_to_roman(n):\n"
        "    out = ''\n"
        "    for v, r in [(1000, 'M'), (500, 'D'), (100, 'C'), (50, 'L'), (10, 'X'),"
        " (5, 'V'), (1, 'I')]:\n"
        "        while n >= v:\n"
        "            out += r\n"
        "            n -= v\n"
        "    return out\n"
    ),
    # Right values, but no ValueError for negative n.
    "factorial": (
        "def factorial(n):\n"
        "    out = 1\n"
        "    for i in range(2, n + 1):\n"
        "        out *= i\n"
        "    return out\n"
    ),
    # The naive .replace(" ", "-") from the seed.
    "slugify": "def slugify(s):\n    return s.lower().replace(' ', '-')\n",
    # Off by one at the top of the range.
    "fizzbuzz": (
        "def fizzbuzz(n):\n"
        "    return ['FizzBuzz' if i % 15 == 0 else 'Fizz' if i % 3 == 0 else"
        " 'Buzz' if i % 5 == 0 else str(i) for i in range(1, n)]\n"
    ),
}


@pytest.mark.parametrize("name", sorted(WRONG_SOLUTIONS))
def test_code_wrong_solution_fails(name: str) -> None:
    task = next(t for t in seeds_code.TASKS if t.name == name)
    fn = _load(WRONG_SOLUTIONS[name], name)
    assert not all(_passes(fn, case) for case in task.cases)


def test_code_prompts_and_split_by_function(suite_prompts: list[TaskPrompt]) -> None:
    prompts = _by_family(suite_prompts, "code")
    assert len(prompts) == len(seeds_code.TASKS)
    splits: dict[str, set[str]] = {TRAIN: set(), TEST: set()}
    for p, task in zip(prompts, seeds_code.TASKS, strict=True):
        spec = _spec(p)
        assert spec["entry_point"] == task.name
        assert spec["cases"] == list(task.cases)
        assert p.reference == seeds_code.REFERENCE_SOLUTIONS[task.name]
        assert _user(p).endswith("Output code only.")
        assert f"`{task.signature}`" in _user(p)
        splits[p.split].add(task.name)
    assert not splits[TRAIN] & splits[TEST]
    assert "is_palindrome" in splits[TRAIN] | splits[TEST]


# --- summary ----------------------------------------------------------------------------


def test_summary_sources_and_references(suite_prompts: list[TaskPrompt]) -> None:
    lengths: Counter[int] = Counter()
    for p in _by_family(suite_prompts, "summary"):
        assert _spec(p) == {"kind": "style", "sentences": 2, "no_emoji": True, "max_words": 60}
        instruction, _, source = _user(p).partition("\n\n")
        assert instruction == "Summarise in exactly two sentences with no emoji."
        assert source.isascii() and not EMOJI.search(source)
        sentences = SENTENCE_END.split(source)
        assert 4 <= len(sentences) <= 7, source
        lengths[len(sentences)] += 1
        # One full stop per sentence, at its end: no splitter can count differently.
        assert all(s.endswith(".") and s.count(".") == 1 for s in sentences), source
        assert p.reference is not None
        summary = SENTENCE_END.split(p.reference)
        assert len(summary) == 2 and all(s.endswith(".") for s in summary), p.reference
        assert len(p.reference.split()) <= 60
        assert not EMOJI.search(p.reference)
    assert set(lengths) == {4, 5, 6, 7}


def test_family_modules_take_the_suite_name() -> None:
    for module in (seeds_number, seeds_date, seeds_json, seeds_code, seeds_summary):
        prompts = module.prompts("other")
        assert prompts and all(p.suite == "other" for p in prompts)
