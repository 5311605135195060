from distillery.filters.answer_key import answer_key, votable


def test_answer_keys_group_the_same_answer():
    num = {"kind": "answer", "expected": "42", "match": "numeric"}
    assert answer_key(num, "42") == answer_key(num, "The answer is 42.") == "42.0"
    assert answer_key(num, "no digits") is None
    exact = {"kind": "answer", "expected": "Paris"}
    assert answer_key(exact, "I think...\n**Paris**.") == "paris"
    date = {"kind": "regex", "pattern": r"\d{4}-\d{2}-\d{2}"}
    assert answer_key(date, "It is 2024-03-01, I believe") == "2024-03-01"
    assert votable(num) and votable(date) and not votable({"kind": "code_tests"})
    assert answer_key({"kind": "style"}, "anything") is None
