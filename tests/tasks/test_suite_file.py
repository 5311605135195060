import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from distillery.tasks.registry import load_suite
from distillery.tasks.suite_file import TaskError

ANSWER = {"kind": "answer", "expected": "4", "match": "numeric", "strict": True}


def _jsonl(path, rows):
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n")
    return path


def test_jsonl_with_prompt_or_messages(tmp_path):
    f = _jsonl(
        tmp_path / "mine.jsonl",
        [
            {"prompt": "2+2? Number only.", "verifier": ANSWER, "family": "math", "split": "test"},
            {
                "messages": [
                    {"role": "system", "content": "Be terse."},
                    {"role": "user", "content": "1+3?"},
                ],
                "verifier": json.dumps(ANSWER),
            },
            "",
        ],
    )
    name, prompts = load_suite(str(f))
    assert name == "mine" and len(prompts) == 2
    a, b = prompts
    assert (a.family, a.split, a.messages) == ("math", "test", (("user", "2+2? Number only."),))
    assert (b.family, b.split) == ("default", "train")
    assert b.messages[0] == ("system", "Be terse.")
    assert load_suite(str(f), "renamed")[0] == "renamed"


def test_parquet(tmp_path):
    f = tmp_path / "p.parquet"
    pq.write_table(pa.table({"prompt": ["a?", "b?"], "verifier": [json.dumps(ANSWER)] * 2}), f)
    name, prompts = load_suite(str(f))
    assert name == "p" and [p.messages[0][1] for p in prompts] == ["a?", "b?"]


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ('{"prompt": "x", "verifier": ', r"bad\.jsonl:2: malformed JSON"),
        ({"prompt": "x"}, r"bad\.jsonl:2: missing 'verifier'"),
        (
            {"prompt": "x", "verifier": {"kind": "nope"}},
            r"bad\.jsonl:2: unknown verifier kind 'nope'",
        ),
        (
            {"prompt": "x", "verifier": {"kind": "answer"}},
            r"bad\.jsonl:2: missing field 'expected'",
        ),
        ({"prompt": "x", "messages": [], "verifier": ANSWER}, r"bad\.jsonl:2: give exactly one of"),
        (
            {"prompt": "x", "verifier": ANSWER, "split": "dev"},
            r"bad\.jsonl:2: 'split' must be one of",
        ),
    ],
)
def test_bad_rows_name_file_and_line(tmp_path, row, message):
    f = _jsonl(tmp_path / "bad.jsonl", [{"prompt": "ok", "verifier": ANSWER}, row])
    with pytest.raises(TaskError, match=message):
        load_suite(str(f))


def test_unknown_suite_and_empty_file(tmp_path):
    with pytest.raises(TaskError, match="unknown suite 'nosuch'; use one of seeds, humaneval"):
        load_suite("nosuch")
    with pytest.raises(TaskError, match="no rows"):
        load_suite(str(_jsonl(tmp_path / "empty.jsonl", [""])))
    with pytest.raises(TaskError, match="no such file"):
        load_suite(str(tmp_path / "missing.jsonl"))
