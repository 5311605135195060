import pytest

from distillery.filters.spec import VERIFIER_KINDS, SpecError, validate_spec


@pytest.mark.parametrize(
    "spec",
    [
        {"kind": "answer", "expected": "120", "match": "numeric", "strict": True},
        {"kind": "regex", "pattern": r"\d{4}-\d{2}-\d{2}", "expected": "2025-08-18"},
        {"kind": "json_schema", "schema": {"type": "object"}, "expected": {"a": 1}},
        {"kind": "code_tests", "entry_point": "f", "cases": [{"args": [1], "expected": 2}]},
        {
            "kind": "code_tests",
            "entry_point": "f",
            "cases": [{"args": [-1], "raises": "ValueError"}],
        },
        {"kind": "code_tests", "entry_point": "f", "test": "def check(c): pass"},
        {"kind": "style", "sentences": 2, "no_emoji": True},
        {"kind": "all_of", "verifiers": [{"kind": "style", "max_words": 5}]},
        {"kind": "judge", "rubric": "is it polite?"},
    ],
)
def test_valid_specs_pass(spec):
    assert validate_spec(spec) is spec


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ([], "a verifier spec is a JSON object"),
        ({"kind": "magic"}, "unknown verifier kind 'magic'"),
        ({"kind": "answer", "expected": "1", "match": "fuzzy"}, "'match' must be one of"),
        ({"kind": "answer", "expected": ["1"]}, "field 'expected' has the wrong type"),
        ({"kind": "regex", "pattern": "("}, "not a valid regex"),
        ({"kind": "code_tests", "entry_point": "f"}, "exactly one of 'cases'"),
        ({"kind": "code_tests", "entry_point": "f", "cases": []}, "'cases' is empty"),
        (
            {"kind": "code_tests", "entry_point": "f", "cases": [{"args": [1]}]},
            "exactly one of 'expected'",
        ),
        ({"kind": "style"}, "needs at least one rule"),
        ({"kind": "style", "sentences": True}, "field 'sentences' has the wrong type"),
        (
            {"kind": "any_of", "verifiers": [{"kind": "bad"}]},
            r"verifiers\[0\]: unknown verifier kind",
        ),
    ],
)
def test_bad_specs_say_what_to_fix(spec, message):
    with pytest.raises(SpecError, match=message):
        validate_spec(spec)


def test_kinds_are_the_documented_ones():
    assert set(VERIFIER_KINDS) == {
        "code_tests",
        "json_schema",
        "answer",
        "regex",
        "style",
        "all_of",
        "any_of",
        "judge",
    }
