"""torch thread counts: asked for, from DISTILLERY_THREADS, or measured (no real model)."""

import logging

import pytest
import torch

from distillery.config.groups import BackendChoice
from distillery.generators import threads
from distillery.generators.backends import make_backend
from distillery.generators.base import SamplingParams
from distillery.generators.model_registry import load, resolve
from distillery.generators.sampler_transformers import TransformersBackend
from distillery.generators.threads import (
    ENV,
    default_candidates,
    measure_threads,
    measured_threads,
    resolve_threads,
)


@pytest.fixture(autouse=True)
def clean(monkeypatch):
    """No DISTILLERY_THREADS, no earlier measurement, torch's count put back afterwards."""
    monkeypatch.delenv(ENV, raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(threads, "_MEASURED", {})
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def _never() -> None:
    raise AssertionError("measured, but a fixed count was given")


class FakeClock:
    """A clock only `work` advances, by a cost that depends on torch's thread count."""

    def __init__(self, monkeypatch, cost):
        self.now = 0.0
        self.calls: list[int] = []
        self.cost = cost
        monkeypatch.setattr(threads, "perf_counter", lambda: self.now)

    def work(self) -> None:
        n = torch.get_num_threads()
        self.calls.append(n)
        self.now += self.cost(n, len(self.calls))


def test_a_requested_count_wins_over_the_environment(monkeypatch):
    monkeypatch.setenv(ENV, "3")
    assert resolve_threads(2, _never) == 2


@pytest.mark.parametrize("requested", [None, 0])
def test_auto_takes_the_environment_without_measuring(monkeypatch, requested):
    monkeypatch.setenv(ENV, " 3 ")
    assert resolve_threads(requested, _never) == 3


@pytest.mark.parametrize("raw", ["0", "-1", "two", "1.5"])
def test_a_malformed_environment_is_one_line_saying_what_to_set(monkeypatch, raw):
    monkeypatch.setenv(ENV, raw)
    with pytest.raises(ValueError) as err:
        resolve_threads(None, _never)
    msg = str(err.value)
    assert "\n" not in msg
    assert msg.startswith(f"{ENV} must be a positive whole number")
    assert repr(raw) in msg and "unset it to measure" in msg


def test_a_negative_request_is_refused():
    with pytest.raises(ValueError, match="--threads must be 0"):
        resolve_threads(-2)


def test_auto_with_nothing_to_measure_keeps_torchs_count(monkeypatch):
    monkeypatch.setenv(ENV, "")  # set but empty counts as unset
    torch.set_num_threads(1)
    assert resolve_threads(None) == 1


def test_a_users_omp_num_threads_is_honoured_and_distillery_threads_wins(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert threads.fixed_threads(None) == 1
    monkeypatch.setenv(ENV, "2")
    assert threads.fixed_threads(None) == 2
    monkeypatch.delenv(ENV)
    monkeypatch.setenv("OMP_NUM_THREADS", "auto")  # not a count: measure
    assert threads.fixed_threads(None) is None


def test_candidates_are_one_half_and_all_cores():
    assert default_candidates(1) == [1]
    assert default_candidates(2) == [1, 2]
    assert default_candidates(3) == [1, 3]
    assert default_candidates(16) == [1, 8, 16]
    assert default_candidates()[0] == 1


def test_measure_picks_the_fastest_alternates_and_restores_torch(monkeypatch):
    torch.set_num_threads(1)
    clock = FakeClock(monkeypatch, lambda n, i: 0.1 * n)  # more threads, slower (busy host)
    best, medians = measure_threads(clock.work, [1, 2, 2], rounds=3)
    assert best == 1
    assert medians == pytest.approx({1: 0.1, 2: 0.2})
    # One untimed warm-up at the smallest count, then rounds in alternating order.
    assert clock.calls == [1, 1, 2, 2, 1, 1, 2]
    assert torch.get_num_threads() == 1  # the caller sets the winner, not measure_threads


def test_measure_takes_medians_and_prefers_more_threads_when_they_are_faster(monkeypatch):
    # Two threads are twice as fast, except one stalled call (in the second round, after
    # the first has shown them fast) that a mean would count.
    clock = FakeClock(monkeypatch, lambda n, i: 5.0 if i == 4 else 0.2 / n)
    best, medians = measure_threads(clock.work, [1, 2], rounds=3)
    assert best == 2
    assert medians == pytest.approx({1: 0.2, 2: 0.1})
    assert clock.calls == [1, 1, 2, 2, 1, 1, 2]  # the stall did not drop two threads


def test_a_candidate_far_behind_sits_out_the_later_rounds(monkeypatch):
    clock = FakeClock(monkeypatch, lambda n, i: 0.1 if n == 1 else 1.0)  # 2 stalls: 10x
    best, medians = measure_threads(clock.work, [1, 2], rounds=3)
    assert best == 1
    assert clock.calls == [1, 1, 2]  # 2 timed once; 1 alone needs no more rounds
    assert medians == pytest.approx({1: 0.1, 2: 1.0})


def test_a_call_past_its_deadline_is_abandoned_where_it_checks(monkeypatch):
    clock = FakeClock(monkeypatch, lambda n, i: 0.0)
    checks = []

    def work() -> None:  # 0.1 s at one thread; two stall: 10 steps of 1 s, checked after each
        n = torch.get_num_threads()
        clock.calls.append(n)
        for _ in range(1 if n == 1 else 10):
            clock.now += 0.1 if n == 1 else 1.0
            checks.append(n)
            threads.abandon_if_late()

    best, medians = measure_threads(work, [1, 2], rounds=3)
    assert best == 1
    assert medians == pytest.approx({1: 0.1, 2: 1.0})  # stopped after 1 s, not run for 10
    assert checks.count(2) == 1 and clock.calls == [1, 1, 2]
    assert threads._STATE.deadline is None  # no deadline left behind for later torch calls


def test_the_probes_stop_at_a_deadline_and_leave_no_hooks_or_gradients():
    model, _ = load(resolve("tiny-random"), dtype=torch.float32)
    for probe in (threads.sampling_probe(model, rows=4), threads.training_probe(model)):
        probe()  # no deadline: runs through
        threads._STATE.deadline = 0.0  # long past
        try:
            with pytest.raises(threads.Abandoned):
                probe()
        finally:
            threads._STATE.deadline = None
        assert not any(m._forward_pre_hooks for m in model.modules())
        assert all(p.grad is None for p in model.parameters())


def test_a_tie_goes_to_fewer_threads(monkeypatch):
    clock = FakeClock(monkeypatch, lambda n, i: 0.5)  # exact in binary: a true tie
    assert measure_threads(clock.work, [2, 1], rounds=1)[0] == 1


def test_bad_candidates_or_rounds_are_refused():
    with pytest.raises(ValueError, match="positive counts"):
        measure_threads(_never, [0, 1])
    with pytest.raises(ValueError, match="rounds"):
        measure_threads(_never, [1, 2], rounds=0)


def test_measured_once_per_purpose_and_logged_once(monkeypatch, caplog):
    clock = FakeClock(monkeypatch, lambda n, i: 0.1 * n)
    caplog.set_level(logging.INFO, logger="distillery")
    assert measured_threads(clock.work, "sampling", [1, 2]) == (1, pytest.approx({1: 0.1, 2: 0.2}))
    calls = len(clock.calls)
    assert measured_threads(clock.work, "sampling", [1, 2])[0] == 1
    assert len(clock.calls) == calls  # cached: not measured again
    assert measured_threads(clock.work, "training", [1, 2])[0] == 1
    assert len(clock.calls) == 2 * calls  # another purpose is measured for itself
    lines = [r.getMessage() for r in caplog.records if r.name == "distillery"]
    assert lines == [
        "torch threads for sampling: 1 (1: 0.10 s, 2: 0.20 s)",
        "torch threads for training: 1 (1: 0.10 s, 2: 0.20 s)",
    ]


def test_auto_measures_through_resolve(monkeypatch):
    clock = FakeClock(monkeypatch, lambda n, i: 0.1 / n)
    monkeypatch.setattr(threads, "default_candidates", lambda: [1, 2])
    assert resolve_threads(None, clock.work, "sampling") == 2


def test_the_backend_sets_a_count_it_is_given():
    torch.set_num_threads(2)
    be = TransformersBackend(resolve("tiny-random"), dtype="fp32", threads=1)
    assert be.threads_used == 1 and torch.get_num_threads() == 1
    torch.set_num_threads(2)  # changed by someone else since: generate sets it again
    list(be.generate([], SamplingParams(n=1)))
    assert torch.get_num_threads() == 1


def test_make_backend_passes_threads_and_auto_measures():
    be = make_backend(resolve("tiny-random"), BackendChoice(dtype="fp32", threads=1))
    assert be.threads_used == 1
    auto = make_backend(resolve("tiny-random"), BackendChoice(dtype="fp32"))
    assert auto.threads_used in default_candidates()
    assert torch.get_num_threads() == auto.threads_used
    assert (threads.os.getpid(), "sampling") in threads._MEASURED


def test_the_backend_refuses_a_malformed_environment_before_loading(monkeypatch):
    monkeypatch.setenv(ENV, "lots")
    monkeypatch.setattr(
        "distillery.generators.model_registry.load", lambda *a, **k: pytest.fail("loaded the model")
    )
    with pytest.raises(ValueError, match=ENV):
        TransformersBackend(resolve("tiny-random"), dtype="fp32")


def test_training_records_the_threads_it_ran_with(tmp_path):
    from distillery.trainers.rsft_trainer import RSFTLauncher
    from distillery.trainers.train_config import RSFTConfig, TrainArgs
    from distillery.trainers.trl_run import training_threads

    model, tok = load(resolve("tiny-random"), dtype=torch.float32)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    # Auto: measured with forward + backward on the model, which keeps no gradients.
    assert training_threads(model, TrainArgs()) in default_candidates()
    assert all(p.grad is None for p in model.parameters())
    rows = [
        {
            "prompt": [{"role": "user", "content": f"q{i}"}],
            "completion": [{"role": "assistant", "content": "ok"}],
        }
        for i in range(2)
    ]
    launcher = RSFTLauncher(
        RSFTConfig(max_steps=1, per_device_train_batch_size=2, max_length=64, threads=1)
    )
    torch.set_num_threads(2)
    result = launcher.train(model, tok, rows, str(tmp_path / "out"))
    assert result.status == "completed"
    assert result.final["threads"] == 1.0
    assert torch.get_num_threads() == 1


def test_a_negative_training_count_is_refused():
    from distillery.trainers.train_config import TrainArgs

    with pytest.raises(ValueError, match="--threads must be 0"):
        TrainArgs(threads=-1)


def test_describe_marks_figures_that_may_have_been_cut_short():
    assert threads.describe(1, {1: 0.1, 2: 0.2}) == "1 (1: 0.10 s, 2: 0.20 s)"
    assert threads.describe(1, {1: 0.1, 2: 0.5}) == "1 (1: 0.10 s, 2: >=0.50 s)"
    assert threads.describe(1, {}) == "1 (one core)"
