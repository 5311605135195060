"""Reason codes: the one place a verdict's `reason` strings are defined.

Short snake_case constants, as in evalplus's PASS/FAIL/TIMEOUT. `SANDBOX_FAULTS` are the
sandbox's own failures: retried, and never charged to the model.

`VERIFIER_ERROR` is a verifier that raised on one input (a bug, or an input it cannot
handle). It is not a fault: it is stored, so a rerun does not pick the same sample again
forever, and it is never a success (passed False, score None). Fixing the verifier means
bumping its version, which verifies the sample again.
"""

from __future__ import annotations

OK = "ok"
WRONG_ANSWER = "wrong_answer"
NO_ANSWER = "no_answer"
EXTRA_TEXT = "extra_text"
FORMAT_MISMATCH = "format_mismatch"
INVALID_JSON = "invalid_json"
SCHEMA_MISMATCH = "schema_mismatch"
STYLE_VIOLATION = "style_violation"
NO_CODE = "no_code"
SYNTAX_ERROR = "syntax_error"
RUNTIME_ERROR = "runtime_error"
MISSING_ENTRY_POINT = "missing_entry_point"
TIMEOUT = "timeout"
MEMORY_LIMIT = "memory_limit"
OUTPUT_LIMIT = "output_limit"
JUDGE_REJECTED = "judge_rejected"
SANDBOX_ERROR = "sandbox_error"
JUDGE_ERROR = "judge_error"
VERIFIER_ERROR = "verifier_error"

SANDBOX_FAULTS = frozenset({SANDBOX_ERROR, JUDGE_ERROR})

ALL = (
    OK,
    WRONG_ANSWER,
    NO_ANSWER,
    EXTRA_TEXT,
    FORMAT_MISMATCH,
    INVALID_JSON,
    SCHEMA_MISMATCH,
    STYLE_VIOLATION,
    NO_CODE,
    SYNTAX_ERROR,
    RUNTIME_ERROR,
    MISSING_ENTRY_POINT,
    TIMEOUT,
    MEMORY_LIMIT,
    OUTPUT_LIMIT,
    JUDGE_REJECTED,
    SANDBOX_ERROR,
    JUDGE_ERROR,
    VERIFIER_ERROR,
)
