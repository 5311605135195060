"""`judge`: a score from a model behind an OpenAI-compatible endpoint. Off by default.

Configure with DISTILLERY_JUDGE_URL (e.g. http://127.0.0.1:8000/v1), DISTILLERY_JUDGE_MODEL
and optionally DISTILLERY_API_KEY. Unconfigured or unreachable, it returns `judge_error`,
which (like a sandbox fault) is never stored as the model's failure.
"""

from __future__ import annotations

import os
import re
from typing import Any

from distillery.filters import reasons
from distillery.filters.base import Verdict

VERSION = "1"
URL_ENV, MODEL_ENV = "DISTILLERY_JUDGE_URL", "DISTILLERY_JUDGE_MODEL"
PROMPT = (
    "Rate how well the RESPONSE satisfies the RUBRIC on a scale from 0 to 10. "
    "Reply with the number only.\n\nRUBRIC:\n{rubric}\n\nRESPONSE:\n{response}"
)


class JudgeVerifier:
    kind = "judge"
    version = VERSION

    def __init__(self) -> None:
        self.url = os.environ.get(URL_ENV)
        self.model = os.environ.get(MODEL_ENV, "default")

    def verify(self, spec: dict[str, Any], text: str) -> Verdict:
        if not self.url:
            return Verdict.fail(reasons.JUDGE_ERROR, f"judge not configured; set {URL_ENV}", None)
        import httpx

        key = os.environ.get("DISTILLERY_API_KEY") or os.environ.get("OPENAI_API_KEY")
        body = {
            "model": self.model,
            "messages": [
                {"role": "user", "content": PROMPT.format(rubric=spec["rubric"], response=text)}
            ],
            "temperature": 0.0,
            "max_tokens": 8,
        }
        try:
            resp = httpx.post(
                self.url.rstrip("/") + "/chat/completions",
                json=body,
                headers={"Authorization": f"Bearer {key}"} if key else {},
                timeout=60,
            )
            resp.raise_for_status()
            answer = resp.json()["choices"][0]["message"]["content"] or ""
        except (httpx.HTTPError, KeyError, IndexError, ValueError) as exc:
            return Verdict.fail(reasons.JUDGE_ERROR, f"judge request failed: {exc}"[:300], None)
        m = re.search(r"\d+(?:\.\d+)?", answer)
        if not m:
            return Verdict.fail(reasons.JUDGE_ERROR, f"judge gave no score: {answer[:80]!r}", None)
        score = min(float(m.group()), 10.0) / 10.0
        threshold = float(spec.get("threshold", 0.7))
        if score >= threshold:
            return Verdict.ok(score=score)
        return Verdict.fail(reasons.JUDGE_REJECTED, f"score {score:.2f} < {threshold}", score)
