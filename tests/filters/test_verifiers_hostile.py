"""Hostile completions: every verifier returns a Verdict (never raises) within its time
budget plus a small constant, with the expected reason; a verify run stores one verdict
per sample whatever its verifiers do."""

import json
import time

import pytest

from distillery.filters import bounded, reasons
from distillery.filters.base import MAX_DETAIL_CHARS, MAX_TEXT_CHARS, Verdict
from distillery.filters.code_extract import MAX_CODE_CHARS, extract_code
from distillery.filters.registry import Verifiers
from distillery.filters.verification import run_verify, select_pending
from distillery.filters.verifier_json import first_json_object
from distillery.filters.verifier_style import count_sentences
from distillery.warehouse.records import PromptRecord, SampleRecord

pytestmark = pytest.mark.attack

BUDGET = 1.0
SLACK = 2.0  # what a verdict may take past its budget: a worker's start, a linear pass

MATH = {"kind": "answer", "expected": "10", "match": "math"}
EXACT = {"kind": "answer", "expected": "Paris"}
EXACT_STRICT = {"kind": "answer", "expected": "Paris", "strict": True}
NUMERIC = {"kind": "answer", "expected": "1.5", "match": "numeric"}
NUMERIC_STRICT = {"kind": "answer", "expected": "120", "match": "numeric", "strict": True}
REDOS = {"kind": "regex", "pattern": r"(a+)+"}
DATE = {"kind": "regex", "pattern": r"\d{4}-\d{2}-\d{2}"}
OBJ = {
    "kind": "json_schema",
    "schema": {"type": "object", "properties": {"a": {"type": "number"}}},
    "expected": {"a": 1.5},
}
OBJ_STRICT = {**OBJ, "strict": True}
PATTERN = {
    "kind": "json_schema",
    "schema": {"type": "object", "properties": {"a": {"type": "string", "pattern": "^(a+)+$"}}},
}
UNIQUE = {
    "kind": "json_schema",
    "schema": {"type": "object", "properties": {"a": {"type": "array", "uniqueItems": True}}},
}
STYLE = {"kind": "style", "sentences": 1, "max_words": 50, "no_emoji": True, "forbidden": ["x"]}
CODE = {"kind": "code_tests", "entry_point": "f", "cases": [{"args": [], "expected": 1}]}

BIG = "a. " * (10 * 2**20 // 3)  # 10 MB
HUGE_INT = "9" * 5000


@pytest.fixture(scope="module")
def vs():
    mp = pytest.MonkeyPatch()
    mp.setenv(bounded.BUDGET_ENV, str(BUDGET))
    verifiers = Verifiers(workers=1)
    # Start a worker now: its start-up is not what these tests time.
    assert verifiers.verify(MATH, "$10$").passed
    yield verifiers
    verifiers.close()
    mp.undo()


def timed(vs, spec, text):
    t0 = time.monotonic()
    v = vs.verify(spec, text)
    elapsed = time.monotonic() - t0
    assert isinstance(v, Verdict)
    assert elapsed < BUDGET + SLACK, f"{elapsed:.1f} s"
    v.detail.encode("utf-8")  # storable
    assert len(v.detail) <= MAX_DETAIL_CHARS
    if not v.passed:
        assert v.reason != reasons.OK
    return v


@pytest.mark.parametrize(
    ("spec", "text", "reason"),
    [
        # answer: math, in a worker
        (MATH, r"\boxed{10^{10^{8}}}", reasons.TIMEOUT),
        (MATH, "$9^{9^{9}}$", reasons.TIMEOUT),
        (MATH, "1+" * 300_000 + "1", reasons.TIMEOUT),
        (MATH, "\ud800 \\boxed{10} \udfff", reasons.OK),
        (MATH, "\x00\\boxed{10}\x00", reasons.OK),
        (MATH, "$" + HUGE_INT + "$", reasons.NO_ANSWER),
        (MATH, BIG, reasons.OUTPUT_LIMIT),
        # answer: exact and numeric, linear, in the caller's thread
        (EXACT, "\udc80\nParis\ud800", reasons.OK),
        (EXACT, "\n" * 1_000_000, reasons.NO_ANSWER),
        (EXACT_STRICT, "x" * (MAX_TEXT_CHARS - 1), reasons.WRONG_ANSWER),
        (EXACT, "\x00" * 1000, reasons.WRONG_ANSWER),
        (NUMERIC, "9" * 4000, reasons.WRONG_ANSWER),  # an int past any float
        (NUMERIC, "1" * MAX_TEXT_CHARS, reasons.WRONG_ANSWER),
        (NUMERIC, "1" + ",000" * 240_000, reasons.WRONG_ANSWER),
        (NUMERIC, "1e999 and 1e-999", reasons.WRONG_ANSWER),
        (NUMERIC_STRICT, HUGE_INT, reasons.WRONG_ANSWER),
        (NUMERIC_STRICT, "so " + "9" * 4000, reasons.EXTRA_TEXT),
        (NUMERIC_STRICT, BIG, reasons.OUTPUT_LIMIT),
        # regex: a task pattern with catastrophic backtracking, in a worker
        (REDOS, "a" * 5000 + "!", reasons.TIMEOUT),
        (DATE, "\x00\ud800", reasons.FORMAT_MISMATCH),
        (DATE, "2025-01-01" * 100_000, reasons.FORMAT_MISMATCH),
        # json_schema, in a worker
        (OBJ, "{" * 100_000, reasons.INVALID_JSON),
        (OBJ, '{"a":' * 100_000, reasons.INVALID_JSON),
        (OBJ, '{"' * 50_000, reasons.INVALID_JSON),
        (OBJ, '{"a": ' + HUGE_INT + "}", reasons.INVALID_JSON),
        (OBJ, '{"a": ' + "9" * 4000 + "}", reasons.WRONG_ANSWER),
        (OBJ, '{"a": 1e999}', reasons.WRONG_ANSWER),
        (OBJ, '{"a": "\ud800"}', reasons.SCHEMA_MISMATCH),
        (OBJ, '{"a": "\x00"} {"a": 1.5}', reasons.OK),
        (OBJ, "[" * 100_000 + '{"a": 1.5}', reasons.OK),
        (OBJ_STRICT, '{"a": ' + HUGE_INT + "}", reasons.INVALID_JSON),
        (OBJ_STRICT, '{"a":' * 100_000, reasons.INVALID_JSON),
        (OBJ_STRICT, "[" * 100_000 + "]" * 100_000, reasons.INVALID_JSON),
        (OBJ_STRICT, '{"a": 1.5, "\udc00": 0}', reasons.OK),
        (PATTERN, '{"a": "' + "a" * 5000 + '!"}', reasons.TIMEOUT),
        (UNIQUE, '{"a": [' + ",".join([f'{{"x": {i}}}' for i in range(30_000)]) + "]}", "timeout"),
        (OBJ, BIG, reasons.OUTPUT_LIMIT),
        # style: linear, in the caller's thread
        (STYLE, "." * 40_000 + "x", reasons.STYLE_VIOLATION),
        (STYLE, "a" + "'" * 100_000 + " b-" * 100_000, reasons.STYLE_VIOLATION),
        (STYLE, "!?" * 300_000 + "x", reasons.STYLE_VIOLATION),
        (STYLE, "Fine \ud800 text.", reasons.OK),
        (STYLE, "\x00" * 10, reasons.OK),
        (STYLE, BIG, reasons.OUTPUT_LIMIT),
        # code: the length is refused before any extraction (or sandbox)
        (CODE, "\n" * (MAX_TEXT_CHARS + 1), reasons.OUTPUT_LIMIT),
    ],
)
def test_hostile_text_gets_a_verdict_within_budget(vs, spec, text, reason):
    assert timed(vs, spec, text).reason == reason


def test_composites_share_one_budget(vs):
    slow = [MATH, REDOS, PATTERN]
    for kind in ("all_of", "any_of"):
        v = timed(vs, {"kind": kind, "verifiers": slow}, "a" * 5000 + r"! \boxed{10^{10^{8}}}")
        assert v.reason == reasons.TIMEOUT
    both = {"kind": "all_of", "verifiers": [STYLE, EXACT]}
    assert timed(vs, both, "." * 40_000 + "x").reason == reasons.STYLE_VIOLATION


def test_a_timed_out_worker_is_replaced(vs):
    assert timed(vs, MATH, r"\boxed{10^{10^{8}}}").reason == reasons.TIMEOUT
    assert timed(vs, MATH, "The answer is $10$.").passed
    assert timed(vs, REDOS, "aaaa").passed


def test_code_extraction_is_linear_and_capped():
    for text in (
        "\n" * 150_000,
        "from\n" * 100_000,
        "```" * 100_000,
        "```\n" * 100_000,
        " \n" * 200_000 + "def g():\n",
        "def" + "\n" * 300_000 + "f(",
    ):
        t0 = time.monotonic()
        extract_code(text, "f", "def f():\n")
        assert time.monotonic() - t0 < 1.0, repr(text[:10])
    assert (
        extract_code("\n" * 150_000 + "def f():\n    return 1\n", "f") == "def f():\n    return 1\n"
    )
    assert extract_code("def f(): pass\n" + " " * MAX_CODE_CHARS, "f") is None


def test_code_spec_over_the_limit_does_not_start_the_sandbox():
    v = Verifiers(workers=1)
    assert v.verify(CODE, "x" * (MAX_TEXT_CHARS + 1)).reason == reasons.OUTPUT_LIMIT
    assert v._sandbox is None


def test_linear_helpers_keep_their_answers():
    assert count_sentences("Dr. Who arrived. Really?! Yes") == 4
    assert count_sentences("." * 40_000 + "x") == 1
    assert first_json_object('{bad {"a": [1, {"b": 2}]} tail') == ({"a": [1, {"b": 2}]}, True)
    long_value = {"a": "y" * 100_000}
    assert first_json_object("{ x " + json.dumps(long_value)) == (long_value, True)


class Boom(Exception):
    pass


class Raising:
    kind, version = "style", "1"

    def verify(self, spec, text):
        raise Boom("bad \ud800 input\nsecond line")


def test_a_raising_verifier_is_a_verifier_error(vs, monkeypatch):
    v = Verifiers(workers=1)
    monkeypatch.setitem(v._by_kind, "style", Raising())
    out = v.verify(STYLE, "text")
    assert (out.passed, out.score, out.reason) == (False, None, reasons.VERIFIER_ERROR)
    assert "Boom" in out.detail and "\n" not in out.detail
    out.detail.encode("utf-8")
    # Raising in the worker: a pattern `re` cannot compile (specs are checked on load).
    broken = timed(vs, {"kind": "regex", "pattern": "("}, "x")
    assert (broken.reason, broken.score) == (reasons.VERIFIER_ERROR, None)
    # Raising in the caller's thread: a tolerance math.isclose refuses.
    bad_tol = timed(vs, {**NUMERIC, "tolerance": -1}, "1.5")
    assert (bad_tol.reason, bad_tol.score) == (reasons.VERIFIER_ERROR, None)
    assert not bad_tol.sandbox_fault  # stored, so a rerun does not pick it again
    for spec, text in ((MATH, b"10"), (STYLE, None), ({"no": "kind"}, "x")):
        assert timed(vs, spec, text).reason == reasons.VERIFIER_ERROR
    assert timed(vs, MATH, "$10$").passed  # the pool is still whole


def test_verdict_detail_is_bounded_utf8_however_built():
    for v in (
        Verdict(False, None, reasons.WRONG_ANSWER, "\ud800" * 10_000),
        Verdict.fail(reasons.WRONG_ANSWER, "x" * 10_000 + "\udfff"),
        Verdict.ok(detail="\ud83d\ude00 pair"),
    ):
        assert len(v.detail) <= MAX_DETAIL_CHARS
        v.detail.encode("utf-8")
    assert Verdict.ok(detail="\ud83d\ude00 pair").detail == "\U0001f600 pair"
    assert Verdict.fail(reasons.WRONG_ANSWER, "a\ud800b").detail == "a\ufffdb"


class RaisesForOne(Verifiers):
    def verify(self, spec, text):
        if text == "explode":
            raise RuntimeError("escaped \udcff")
        return super().verify(spec, text)


def _samples(wh, texts, spec):
    prompt = PromptRecord("prm-h", "s", "fam", "test", "[]", json.dumps(spec), None, "run-h")
    samples = [
        SampleRecord(
            f"smp-{i:02d}",
            "prm-h",
            "mdl-h",
            "run-h",
            "import",
            i,
            0,
            0.0,
            1.0,
            1,
            t,
            0,
            0,
            "stop",
            0.0,
        )
        for i, t in enumerate(texts)
    ]
    wh.write([prompt, *samples])


def test_run_verify_stores_one_verdict_per_sample_whatever_happens(wh, vs):
    spec = {"kind": "any_of", "verifiers": [MATH, EXACT]}
    texts = [
        "Paris",
        "explode",  # the verifier raises
        "London \ud800",  # a lone surrogate in the stored sample text
        "nul \x00 byte",
        r"\boxed{10^{10^{8}}}",  # runs out of budget
        "{" * 50_000,
        "x" * (MAX_TEXT_CHARS + 1),
    ]
    _samples(wh, texts, spec)
    verifiers = RaisesForOne(workers=1)
    pending, already = select_pending(wh, None, None, None, verifiers)
    assert (len(pending), already) == (len(texts), 0)
    summary = run_verify(wh, pending, verifiers, "run-v", workers=3)
    assert summary.written == len(texts) and summary.faults == 0
    rows = dict(wh.query("SELECT sample_id, reason FROM verdicts ORDER BY sample_id"))
    assert rows == {
        "smp-00": reasons.OK,
        "smp-01": reasons.VERIFIER_ERROR,
        "smp-02": reasons.NO_ANSWER,  # any_of reports its first child's failure
        "smp-03": reasons.NO_ANSWER,
        "smp-04": reasons.TIMEOUT,
        "smp-05": reasons.NO_ANSWER,
        "smp-06": reasons.OUTPUT_LIMIT,
    }
    ((passed, score, detail),) = wh.query(
        "SELECT passed, score, detail FROM verdicts WHERE sample_id = 'smp-01'"
    )
    assert (passed, score) == (False, None) and "RuntimeError" in detail
    assert wh.query("SELECT count(*) FROM verdicts WHERE passed")[0][0] == 1
    assert select_pending(wh, None, None, None, verifiers) == ([], len(texts))
    stored = dict(wh.query("SELECT sample_id, text FROM samples"))
    assert stored["smp-02"] == "London \ufffd" and stored["smp-03"] == "nul \x00 byte"


def test_what_is_verified_is_written_before_an_error_propagates(wh, vs):
    _samples(wh, [f"text {i}" for i in range(6)], EXACT)
    verifiers = Verifiers(workers=1)
    pending, _ = select_pending(wh, None, None, None, verifiers)
    seen = []

    def progress(n):
        seen.append(n)
        if len(seen) == 4:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_verify(wh, pending, verifiers, "run-v", workers=1, progress=progress)
    assert wh.query("SELECT count(*) FROM verdicts")[0][0] == 4
    rest, already = select_pending(wh, None, None, None, verifiers)
    assert (len(rest), already) == (2, 4)
