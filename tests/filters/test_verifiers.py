import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from distillery.filters import reasons
from distillery.filters.registry import Verifiers
from distillery.filters.verifier_answer import AnswerVerifier
from distillery.filters.verifier_json import JsonSchemaVerifier, first_json_object
from distillery.filters.verifier_judge import JudgeVerifier
from distillery.filters.verifier_regex import RegexVerifier
from distillery.filters.verifier_style import StyleVerifier, count_sentences

NUMBER_ONLY = {"kind": "answer", "expected": "120", "match": "numeric", "strict": True}


@pytest.mark.parametrize(
    ("text", "passed", "reason"),
    [
        ("120", True, "ok"),
        (" 120\n", True, "ok"),
        ("120.", True, "ok"),
        ("**120**", True, "ok"),
        ("120.0", True, "ok"),
        ("The factorial of 5 is 120.", False, "extra_text"),
        ("24", False, "wrong_answer"),
        ("five", False, "no_answer"),
        ("", False, "no_answer"),
    ],
)
def test_answer_numeric_strict_is_the_seeds_number_only(text, passed, reason):
    v = AnswerVerifier().verify(NUMBER_ONLY, text)
    assert (v.passed, v.reason) == (passed, reason)


def test_answer_lenient_takes_the_last_number_and_tolerance():
    spec = {"kind": "answer", "expected": "0.3333", "match": "numeric", "tolerance": 1e-3}
    assert AnswerVerifier().verify(spec, "1/3 is about 0.33333").passed
    assert not AnswerVerifier().verify(spec, "0.3333 no wait 0.5").passed
    spec = {"kind": "answer", "expected": "1000000", "match": "numeric"}
    assert AnswerVerifier().verify(spec, "It is 1,000,000").passed


def test_answer_exact_and_math():
    exact = {"kind": "answer", "expected": "Paris", "match": "exact", "strict": True}
    assert AnswerVerifier().verify(exact, "Paris").passed
    assert AnswerVerifier().verify(exact, "The capital is Paris.").reason == reasons.EXTRA_TEXT
    lenient = {"kind": "answer", "expected": "Paris"}
    assert AnswerVerifier().verify(lenient, "Let me think.\nParis").passed
    assert not AnswerVerifier().verify(lenient, "Parisian").passed
    math = {"kind": "answer", "expected": "\\frac{1}{2}", "match": "math"}
    assert AnswerVerifier().verify(math, "The answer is $0.5$").passed
    assert not AnswerVerifier().verify(math, "The answer is $0.25$").passed


def test_regex_full_match_and_value():
    spec = {"kind": "regex", "pattern": r"\d{4}-\d{2}-\d{2}", "expected": "2025-08-18"}
    assert RegexVerifier().verify(spec, "2025-08-18\n").passed
    assert RegexVerifier().verify(spec, "2025-08-19").reason == reasons.WRONG_ANSWER
    assert (
        RegexVerifier().verify(spec, "Next Monday is 2025-08-18.").reason == reasons.FORMAT_MISMATCH
    )


def test_json_first_object_schema_and_expected():
    spec = {
        "kind": "json_schema",
        "schema": {
            "type": "object",
            "required": ["city", "country"],
            "properties": {"city": {"type": "string"}, "country": {"type": "string"}},
        },
        "expected": {"city": "Paris", "country": "France"},
    }
    v = JsonSchemaVerifier()
    assert v.verify(spec, 'Sure! {"city": "Paris", "country": "france"} done').passed
    assert v.verify(spec, '```json\n{"city": "Paris"}\n```').reason == reasons.SCHEMA_MISMATCH
    wrong = v.verify(spec, '{"city": "Paris", "country": "Italy"}')
    assert (wrong.reason, wrong.score) == (reasons.WRONG_ANSWER, 0.5)
    assert v.verify(spec, "{city: Paris}").reason == reasons.INVALID_JSON
    strict = {**spec, "strict": True}
    assert v.verify(strict, '{"city": "Paris", "country": "France"}').passed
    assert (
        v.verify(strict, 'Here: {"city": "Paris", "country": "France"}').reason
        == reasons.INVALID_JSON
    )
    assert first_json_object('{bad {"a": [1, {"b": 2}]} tail') == ({"a": [1, {"b": 2}]}, True)


def test_style_rules():
    spec = {"kind": "style", "sentences": 2, "no_emoji": True, "max_words": 12}
    v = StyleVerifier()
    assert v.verify(spec, "The hall opened. People came.").passed
    assert (
        v.verify(spec, "The hall opened. People came. It rained.").reason == reasons.STYLE_VIOLATION
    )
    emoji = v.verify(spec, "The hall opened 🎉. People came.")
    assert emoji.reason == reasons.STYLE_VIOLATION and "emoji" in emoji.detail
    long = v.verify(
        spec, "One two three four five six seven. Eight nine ten eleven twelve thirteen."
    )
    assert "13 words" in long.detail
    both = v.verify(spec, "🎉 a. b. c.")
    assert both.score == pytest.approx(1 / 3)
    banned = {"kind": "style", "forbidden": ["very"]}
    assert v.verify(banned, "It is Very good").reason == reasons.STYLE_VIOLATION
    assert count_sentences("Dr. Who arrived. Really?! Yes") == 4  # a known limit: abbreviations
    assert count_sentences("") == 0


def test_all_of_any_of_and_versions():
    vs = Verifiers(workers=1)
    both = {
        "kind": "all_of",
        "verifiers": [{"kind": "regex", "pattern": r"\d+"}, {"kind": "answer", "expected": "42"}],
    }
    assert vs.verify(both, "42").passed
    fail = vs.verify(both, "41")
    assert fail.reason == reasons.WRONG_ANSWER and fail.detail.startswith("answer:")
    either = {
        "kind": "any_of",
        "verifiers": [{"kind": "answer", "expected": "yes"}, {"kind": "answer", "expected": "oui"}],
    }
    assert vs.verify(either, "oui").passed
    assert not vs.verify(either, "non").passed
    assert Verifiers.version(NUMBER_ONLY) == "1"
    assert Verifiers.version(both) == "1(regex:1,answer:1)"


def test_judge_is_off_unless_configured_and_scores_through_an_endpoint(monkeypatch):
    monkeypatch.delenv("DISTILLERY_JUDGE_URL", raising=False)
    off = JudgeVerifier().verify({"kind": "judge", "rubric": "polite"}, "hi")
    assert off.reason == reasons.JUDGE_ERROR and off.sandbox_fault

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            score = "9" if "please" in body["messages"][0]["content"] else "2"
            data = json.dumps({"choices": [{"message": {"content": score}}]}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("DISTILLERY_JUDGE_URL", f"http://127.0.0.1:{srv.server_address[1]}/v1")
        judge = JudgeVerifier()
        good = judge.verify({"kind": "judge", "rubric": "polite"}, "please sit")
        bad = judge.verify({"kind": "judge", "rubric": "polite"}, "sit")
        assert (good.passed, good.score) == (True, 0.9)
        assert (bad.passed, bad.reason, bad.score) == (False, reasons.JUDGE_REJECTED, 0.2)
    finally:
        srv.shutdown()
        srv.server_close()
