"""`style`: sentence count, no emoji, length bounds, forbidden words."""

from __future__ import annotations

import re
from typing import Any

from distillery.filters import reasons
from distillery.filters.base import Verdict

VERSION = "1"
# Pictographs, symbols and dingbats, flags, and the joiners/selectors emoji are built from.
EMOJI = re.compile(
    "[\U0001f000-\U0001faff\U00002600-\U000027bf\U0001f1e6-\U0001f1ff"
    "\U00002b00-\U00002bff\U0000fe0f\U0000200d\U000020e3\U00003030\U0000303d]"
)
# Linear time: a match starts only at the first mark of a run of marks (never inside it),
# and possessive quantifiers never backtrack. ("." * 40_000 + "x" once took 29 s.)
_SENTENCE_END = re.compile(r"(?<![.!?])[.!?]++[\"')\]]*+(?=\s|$)")
# A word is a run of word characters, apostrophes and hyphens, trimmed to its first and
# last word character (what `\b[\w'-]+\b` finds, without its backtracking).
_WORD_RUN = re.compile(r"[\w'-]+")


def words(text: str) -> list[str]:
    return [w for w in (run.strip("'-") for run in _WORD_RUN.findall(text)) if w]


def count_sentences(text: str) -> int:
    """Sentence-ending punctuation followed by space or the end; a trailing fragment counts."""
    body = text.strip()
    if not body:
        return 0
    ends = list(_SENTENCE_END.finditer(body))
    tail = body[ends[-1].end() :].strip() if ends else body
    return len(ends) + (1 if tail else 0)


class StyleVerifier:
    kind = "style"
    version = VERSION

    def verify(self, spec: dict[str, Any], text: str) -> Verdict:
        problems: list[str] = []
        rules = 0
        found = words(text)
        if "sentences" in spec:
            rules += 1
            n = count_sentences(text)
            if n != spec["sentences"]:
                problems.append(f"{n} sentences, need {spec['sentences']}")
        if spec.get("no_emoji"):
            rules += 1
            m = EMOJI.search(text)
            if m:
                problems.append(f"emoji {m.group()!r}")
        if "min_words" in spec:
            rules += 1
            if len(found) < spec["min_words"]:
                problems.append(f"{len(found)} words, need at least {spec['min_words']}")
        if "max_words" in spec:
            rules += 1
            if len(found) > spec["max_words"]:
                problems.append(f"{len(found)} words, at most {spec['max_words']}")
        if spec.get("forbidden"):
            rules += 1
            lowered = {w.lower() for w in found}
            hit = [w for w in spec["forbidden"] if str(w).lower() in lowered]
            if hit:
                problems.append(f"forbidden word {hit[0]!r}")
        if not text.strip():
            return Verdict.fail(reasons.NO_ANSWER, "empty completion")
        if problems:
            return Verdict.fail(
                reasons.STYLE_VIOLATION, "; ".join(problems), 1 - len(problems) / rules
            )
        return Verdict.ok()
