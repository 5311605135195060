import json

from distillery.filters.spec import validate_spec
from distillery.tasks.suite_humaneval import HumanEvalSuite


def test_all_164_problems_in_the_test_split():
    prompts = HumanEvalSuite().prompts()
    assert len(prompts) == 164
    assert {p.split for p in prompts} == {"test"}
    assert len({p.prompt_id for p in prompts}) == 164
    first = prompts[0]
    spec = json.loads(first.verifier)
    validate_spec(spec)
    assert spec["task_id"] == "HumanEval/0" and spec["entry_point"] == "has_close_elements"
    assert "def check(candidate)" in spec["test"]
    assert spec["prefix"] in first.messages[-1][1]
    assert first.reference.startswith(spec["prefix"])
