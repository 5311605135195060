"""The share of an eval done: the n draws one by one, then each strategy whole; never back."""

from distillery.evals.eval_config import EvalConfig
from distillery.evals.eval_progress import EvalProgress


def track(**kw):
    seen = []
    job = EvalConfig(n=4, k=(1,), **kw)
    return EvalProgress.of(job, 3, lambda done, total: seen.append((done, total))), seen


def test_draws_count_as_made_and_what_the_warehouse_holds_counts_at_once():
    p, seen = track(strategies=("best_of_n", "retry"), budget=2, retries=1)
    assert p.total == 3 * (4 + 2 + 1)
    p.planned(5)  # 12 draws asked, 7 in the warehouse already
    p.drawn(3)
    p.drawn(9)  # more than were missing (a strategy's own draws): capped at the draws
    p.draws_done()
    p.planned(4)  # a strategy's plan and draws move nothing until it ends
    p.drawn(4)
    p.strategy_done(0)
    p.strategy_done(1)
    assert seen == [(7, 21), (10, 21), (12, 21), (12, 21), (18, 21), (21, 21)]


def test_the_count_never_goes_back():
    p, seen = track()
    p.drawn(10)
    p.planned(12)  # a later plan that finds less done
    p.draws_done()
    assert [d for d, _ in seen] == [10, 10, 12]
    assert p.total == 12


def test_without_a_listener_it_only_counts():
    p = EvalProgress.of(EvalConfig(n=2, k=(1,)), 5, None)
    p.drawn(4)
    assert (p.done, p.total) == (4, 10)
