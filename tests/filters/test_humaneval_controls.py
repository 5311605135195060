"""Controls for the sandbox: HumanEval's canonical solutions pass, every time, under load;
the same solutions with their return values removed fail."""

import ast
import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

from distillery.filters import reasons
from distillery.filters.registry import Verifiers
from distillery.filters.sandbox.child import Limits
from distillery.tasks.suite_humaneval import HumanEvalSuite

pytestmark = pytest.mark.attack


@pytest.fixture(scope="module")
def problems():
    return [(json.loads(p.verifier), p.reference) for p in HumanEvalSuite().prompts()]


@pytest.fixture(scope="module")
def verifiers():
    v = Verifiers()
    yield v
    v.close()


def _fenced(code: str) -> str:
    return f"Here is the solution:\n```python\n{code}\n```\n"


def _verify_all(verifiers, items):
    with ThreadPoolExecutor(max_workers=verifiers.sandbox.workers) as pool:
        return list(pool.map(lambda it: verifiers.verify(it[0], it[1]), items))


def test_canonical_solutions_pass_three_times_with_every_core_busy(problems, verifiers):
    import os

    burners = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"])
        for _ in range(os.cpu_count() or 1)
    ]
    try:
        for round_ in range(3):
            verdicts = _verify_all(verifiers, [(spec, _fenced(ref)) for spec, ref in problems])
            failed = [
                (spec["task_id"], v.reason, v.detail)
                for (spec, _), v in zip(problems, verdicts, strict=True)
                if not v.passed
            ]
            assert failed == [], f"round {round_}: {failed[:5]}"
            assert len(verdicts) == 164
    finally:
        for b in burners:
            b.kill()
            b.wait()


def _return_none(reference: str, entry_point: str) -> str:
    """The canonical solution with every `return X` of the entry point made `return None`."""
    tree = ast.parse(reference)
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.name == entry_point:
            for inner in ast.walk(node):
                if isinstance(inner, ast.Return):
                    inner.value = ast.Constant(None)
    return ast.unparse(tree)


def test_mutated_solutions_fail(problems):
    items = [(spec, _fenced(_return_none(ref, spec["entry_point"]))) for spec, ref in problems]
    # A 3 s wall clock (the default is 10 s): a mutant that loops is ended sooner; the
    # canonical solutions above ran under the default, beside busy cores.
    verifiers = Verifiers(limits=Limits(wall_s=3.0))
    try:
        verdicts = _verify_all(verifiers, items)
    finally:
        verifiers.close()
    passed = [spec["task_id"] for (spec, _), v in zip(problems, verdicts, strict=True) if v.passed]
    assert passed == []
    # A mutant may also loop (a recursion that now sees None), but never pass.
    assert {v.reason for v in verdicts} <= {
        reasons.WRONG_ANSWER,
        reasons.RUNTIME_ERROR,
        reasons.TIMEOUT,
    }
