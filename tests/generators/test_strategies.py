"""Strategy logic over a context that replays given verdicts (the end-to-end runs on
tiny-random with the real verifier are in tests/flows/test_eval_cli.py)."""

from distillery.generators.base import Attempt
from distillery.generators.strategies import make_strategy
from distillery.generators.strategy_retry import feedback


class Replay:
    """Draws and follow-ups from scripted (text, passed) lists, recording what was asked."""

    def __init__(self, draws, follow):
        self._draws, self._follow = draws, follow
        self.asked = []

    def _a(self, pid, i, text, passed):
        return Attempt(
            f"{pid}-{i}",
            pid,
            text,
            passed,
            "ok" if passed else "wrong_answer",
            "expected 4",
            5,
            0.5,
        )

    def draws(self, prompt_ids, n):
        return {p: [self._a(p, i, *self._draws[p][i]) for i in range(n)] for p in prompt_ids}

    def follow_ups(self, requests):
        self.asked += requests
        return {
            r.prompt_id: self._a(
                r.prompt_id, 100 + r.attempt, *self._follow[r.prompt_id][r.attempt - 1]
            )
            for r in requests
        }


PROMPTS = [("p", "fam", (("user", "2+2?"),)), ("q", "fam", (("user", "3+1?"),))]


def test_best_of_n_returns_the_first_passing_draw():
    ctx = Replay({"p": [("5", False), ("4", True), ("4", True)], "q": [("1", False)] * 3}, {})
    out = make_strategy("best_of_n", 3).run(ctx, PROMPTS)
    assert [(o.passed, o.answer, o.samples, o.tokens) for o in out] == [
        (True, "p-1", 3, 15),
        (False, "q-0", 3, 15),
    ]


def test_majority_vote_picks_the_most_common_answer_not_the_verified_one():
    draws = {
        "p": [("5", False), ("4", True), ("5", False)],
        "q": [("4", True), ("x", False), ("y", False)],
    }
    out = make_strategy("majority", 3, key=lambda pid, t: t).run(Replay(draws, {}), PROMPTS)
    assert [(o.passed, o.answer) for o in out] == [(False, "p-0"), (True, "q-0")]  # tie: first


def test_retry_feeds_the_reason_back_and_stops_at_the_first_pass():
    ctx = Replay({"p": [("5", False)], "q": [("4", True)]}, {"p": [("6", False), ("4", True)]})
    out = make_strategy("retry", 3).run(ctx, PROMPTS)
    assert [(o.passed, o.samples, o.answer) for o in out] == [(True, 3, "p-102"), (True, 1, "q-0")]
    assert [r.attempt for r in ctx.asked] == [1, 2]
    second = ctx.asked[1].messages
    assert second[0] == ("user", "2+2?")
    assert second[1:] == (
        ("assistant", "5"),
        ("user", feedback(ctx.draws(["p"], 1)["p"][0])),
        ("assistant", "6"),
        ("user", feedback(ctx._a("p", 101, "6", False))),
    )
    assert "wrong_answer: expected 4" in second[2][1]
