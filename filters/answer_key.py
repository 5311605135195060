"""The comparable final answer of a completion, for majority voting over answer-type prompts.

Votes must group completions that say the same thing in different words ("42", "42.",
"The answer is 42"), so the key is extracted the way the prompt's verifier reads answers.
Only `answer` and `regex` specs have a single final answer; other kinds cannot vote.
"""

from __future__ import annotations

import re
from typing import Any

from distillery.filters.verifier_answer import _NUMBER, _WRAPPERS, parse_number

VOTABLE = ("answer", "regex")


def votable(spec: dict[str, Any]) -> bool:
    return spec.get("kind") in VOTABLE


def answer_key(spec: dict[str, Any], text: str) -> str | None:
    """The answer `text` gives for a prompt with this spec, normalised; None if none."""
    kind = spec.get("kind")
    core = text.strip(_WRAPPERS).rstrip(".")
    if kind == "regex":
        found = re.search(spec["pattern"].lstrip("^").rstrip("$"), text)
        return found.group(0) if found else None
    if kind != "answer":
        return None
    match = spec.get("match", "exact")
    if match == "numeric":
        numbers = _NUMBER.findall(text)
        value = parse_number(numbers[-1]) if numbers else None
        return None if value is None else repr(float(value))
    if match == "math":
        from math_verify import parse

        parsed = parse(text, parsing_timeout=None)
        return str(parsed[-1]) if parsed else None
    if not core:
        return None
    return core.splitlines()[-1].strip(_WRAPPERS).rstrip(".").casefold()
