"""Validate-and-retry: answer, and while the validator rejects, say why and ask again.

The seeds' JSON example: the validator's reason and detail go back to the model as the
next user turn, up to R retries. Retries are stored as samples of the original prompt
(strategy "retry"), so one that finally validated can become a one-shot RSFT target:
that is how the search gets baked into the weights.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from distillery.generators.base import Attempt, FollowUp, Outcome, StrategyContext

FEEDBACK = (
    "Your answer was checked and rejected ({reason}: {detail}). "
    "Answer the original request again, correctly, following every instruction."
)


def feedback(attempt: Attempt) -> str:
    return FEEDBACK.format(reason=attempt.reason, detail=attempt.detail or "no detail")


@dataclass(frozen=True)
class ValidateAndRetry:
    budget: int = 2  # retries after the first answer
    name: str = "retry"

    def run(
        self, ctx: StrategyContext, prompts: Sequence[tuple[str, str, tuple[tuple[str, str], ...]]]
    ) -> list[Outcome]:
        first = ctx.draws([pid for pid, _, _ in prompts], 1)
        history: dict[str, list[Attempt]] = {pid: [first[pid][0]] for pid, _, _ in prompts}
        messages = {pid: tuple(msgs) for pid, _, msgs in prompts}
        for attempt in range(1, self.budget + 1):
            failing = [pid for pid, _, _ in prompts if not history[pid][-1].passed]
            if not failing:
                break
            requests = []
            for pid in failing:
                turns = list(messages[pid])
                for a in history[pid]:
                    turns += [("assistant", a.text), ("user", feedback(a))]
                requests.append(FollowUp(pid, tuple(turns), attempt))
            for pid, a in ctx.follow_ups(requests).items():
                history[pid].append(a)
        out = []
        for pid, family, _ in prompts:
            attempts = history[pid]
            out.append(Outcome.of(pid, family, attempts, attempts[-1]))
        return out
