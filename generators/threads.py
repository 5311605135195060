"""How many threads torch gets for sampling and training on a CPU: measured, not assumed.

torch's default is one thread per core. That is right on an idle machine and badly wrong
on a busy one: a parallel region ends when its slowest thread does, so when another
process holds one of two cores every step waits for the descheduled thread. On the shared
2-core development machine sampling ran at 7-15 tok/s with the default 2 threads and at
36 tok/s with one (issue 11). Which count wins depends on the load at the time, so it is
measured: one to a few seconds of the real model doing a step of the real work, each
candidate count timed in alternating rounds, the fastest median kept for the rest of the
process (figures in benchmarks/RESULTS.md, "Threads").

`DISTILLERY_THREADS` (or `--threads N`) fixes the count and skips the measurement.
"""

from __future__ import annotations

import logging
import os
import statistics
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from time import perf_counter
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

ENV = "DISTILLERY_THREADS"
log = logging.getLogger("distillery")

# Rows of the sampling probe: a decode step of the default batch. At a quiet moment on the
# 2-core machine a 32-row step was no faster at two threads than at one (the matmuls are
# too small to split), a 256-row step 1.4x faster; a probe smaller than the real batch
# would say 1 even on an idle machine.
SAMPLING_PROBE_ROWS = 256
# The training probe: forward + backward of 2 x 16 tokens, 0.35-0.6 s a call at one thread
# for SmolLM2-135M in fp32 on 2 cores (at 1 x 16 two threads showed no gain, as above).
TRAINING_PROBE_SHAPE = (2, 16)

# On an idle machine the candidates differ by less than 2x (1.4x here); a busy one stalls a
# multi-threaded step 3-35x (a parallel region waits for its descheduled thread).
PRUNE_FACTOR = 3.0

# The deadline of the timed call in progress on this thread (None: none). A probe checks it
# between modules, so a stalled call (about 15 s for one 2-thread decode step on a busy
# 2-core host, against 0.65 s at one thread) is abandoned once it has lost, not run out.
_STATE = threading.local()


class Abandoned(Exception):
    """A probe call ran past its deadline: it has already lost, so it stops there."""


def abandon_if_late() -> None:
    """Raise Abandoned if the timed call in progress on this thread is past its deadline."""
    deadline = getattr(_STATE, "deadline", None)
    if deadline is not None and perf_counter() > deadline:
        raise Abandoned


# One measurement per (process, purpose): the pid is part of the key so a forked worker
# measures for itself instead of inheriting its parent's figures.
_MEASURED: dict[tuple[int, str], tuple[int, dict[int, float]]] = {}
# Shard tasks may open backends from several threads at once; one measures, the rest wait
# and reuse its answer (two measuring at once would load the cores and skew both).
_LOCK = threading.Lock()


def usable_cores() -> int:
    """Cores this process may run on: its affinity mask, not the machine's count.

    `os.cpu_count()` counts every core of the host, which overstates a pinned process or a
    container given a subset of cores.
    """
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def default_candidates(cores: int | None = None) -> list[int]:
    """1, half the cores and all of them: three timings cover the range on any machine."""
    n = cores if cores is not None else usable_cores()
    return sorted({1, max(1, n // 2), max(1, n)})


def fixed_threads(requested: int | None) -> int | None:
    """The count asked for (`requested` > 0, else `DISTILLERY_THREADS`, else a positive
    `OMP_NUM_THREADS`); None: measure.

    Raises ValueError, with what to set, for a negative request or a malformed variable.
    """
    if requested is not None and requested < 0:
        raise ValueError(f"--threads must be 0 (measure) or a positive count (got {requested})")
    if requested:
        return requested
    raw = os.environ.get(ENV, "").strip()
    if not raw:  # unset, or set empty (`DISTILLERY_THREADS= cmd`)
        # A user who set OpenMP's own variable has chosen; only a count is honoured.
        omp = os.environ.get("OMP_NUM_THREADS", "").strip()
        return int(omp) if omp.isdigit() and int(omp) > 0 else None
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise ValueError(
            f"{ENV} must be a positive whole number of torch threads (got {raw!r}); "
            f"set it to e.g. 1, or unset it to measure"
        )
    return value


def measure_threads(
    work: Callable[[], None], candidates: Sequence[int], rounds: int = 3
) -> tuple[int, dict[int, float]]:
    """(fastest count, median seconds per count) of `work` under each candidate count.

    One untimed call first pays the one-off allocator and kernel set-up; it runs at the
    smallest count, the one that stays cheap when the machine is busy. Then each round
    times every candidate once, the order reversed every other round (1,2 / 2,1 / 1,2) so
    a drift in the machine's load hits all candidates alike. A tie goes to fewer threads,
    which leaves more for everything else.

    On a busy host a stalled multi-threaded call takes seconds, so a losing candidate is cut
    short three ways: a timed call has a deadline of `PRUNE_FACTOR` x the best call so far
    (a `work` that calls `abandon_if_late`, as the probes below do between modules, stops
    there and the time it ran stands for it); a candidate whose best call is more than
    `PRUNE_FACTOR` x the best of all sits out the later rounds; a lone survivor needs no
    more rounds. That can judge a candidate on its first call: if that call's stall was
    noise, an idle machine loses at most what the extra threads would have gained (1.4x
    here), while keeping a count that stalls costs a busy one up to 35x.

    torch's thread count is restored afterwards; the caller sets the winner.
    """
    counts = list(dict.fromkeys(candidates))  # deduplicated, order kept
    if not counts or any(c < 1 for c in counts):
        raise ValueError(f"thread candidates must be positive counts (got {list(candidates)})")
    if rounds < 1:
        raise ValueError(f"rounds must be at least 1 (got {rounds})")
    import torch  # here, not at the top: `fixed_threads` checks a job before torch loads

    before = torch.get_num_threads()
    times: dict[int, list[float]] = {c: [] for c in counts}
    live = list(counts)
    try:
        torch.set_num_threads(min(counts))
        work()
        for r in range(rounds):
            for c in live if r % 2 == 0 else reversed(live):
                torch.set_num_threads(c)
                done = [t for ts in times.values() for t in ts]
                started = perf_counter()
                _STATE.deadline = started + PRUNE_FACTOR * min(done) if done else None
                try:
                    work()
                except Abandoned:
                    pass  # slower than PRUNE_FACTOR x the best: its time so far will do
                finally:
                    _STATE.deadline = None
                times[c].append(perf_counter() - started)
            # Best calls compared, so a later stall of a candidate cannot drop it.
            fastest = min(min(times[c]) for c in live)
            live = [c for c in live if min(times[c]) <= PRUNE_FACTOR * fastest]
            if len(live) == 1:  # the rest have lost: more rounds would not change the answer
                break
    finally:
        torch.set_num_threads(before)
    medians = {c: statistics.median(ts) for c, ts in times.items()}
    best = min(counts, key=lambda c: (medians[c], c))
    return best, medians


def measured_threads(
    work: Callable[[], None],
    purpose: str,
    candidates: Sequence[int] | None = None,
    rounds: int = 3,
) -> tuple[int, dict[int, float]]:
    """`measure_threads` once per (process, purpose), logged once; later calls reuse it."""
    key = (os.getpid(), purpose)
    with _LOCK:
        if key in _MEASURED:
            return _MEASURED[key]
        counts = list(candidates) if candidates is not None else default_candidates()
        if len(counts) == 1:  # one core: nothing to choose between
            best, medians = counts[0], {}
        else:
            best, medians = measure_threads(work, counts, rounds)
        _MEASURED[key] = (best, medians)
    log.info("torch threads for %s: %s", purpose, describe(best, medians))
    return best, medians


def describe(best: int, medians: dict[int, float]) -> str:
    """'1 (1: 0.22 s, 2: >=0.69 s)': the choice and the median seconds per count.

    A count at `PRUNE_FACTOR` x the winner or slower may have been cut short, so its
    figure is only a lower bound and says so.
    """
    if not medians:
        return f"{best} (one core)"
    figures = ", ".join(
        f"{c}: {'>=' if s >= PRUNE_FACTOR * medians[best] else ''}{s:.2f} s"
        for c, s in sorted(medians.items())
    )
    return f"{best} ({figures})"


def resolve_threads(
    requested: int | None, work: Callable[[], None] | None = None, purpose: str = "torch"
) -> int:
    """The thread count to use: `requested` if > 0, else `DISTILLERY_THREADS`, else measured.

    None or 0 means auto. Without `work` there is nothing to measure, so auto keeps
    torch's current count.
    """
    fixed = fixed_threads(requested)
    if fixed is not None:
        return fixed
    if work is None:
        import torch

        return torch.get_num_threads()
    return measured_threads(work, purpose)[0]


def _probe_ids(model: Any, rows: int, tokens: int) -> torch.Tensor:
    import torch

    # Any valid token ids do: the cost of a step does not depend on which tokens they are.
    vocab = int(getattr(model.config, "vocab_size", 0) or 1000)
    ids = torch.arange(rows * tokens, dtype=torch.long).remainder(vocab).view(rows, tokens)
    return ids.to(model.device)


@contextmanager
def _checked_between_modules(model: Any) -> Iterator[None]:
    """Check the deadline before every module's forward (some hundreds of Python calls: under
    a millisecond next to the step)."""
    handles = [m.register_forward_pre_hook(lambda *_: abandon_if_late()) for m in model.modules()]
    try:
        yield
    finally:
        for h in handles:
            h.remove()


def sampling_probe(model: Any, rows: int = SAMPLING_PROBE_ROWS) -> Callable[[], None]:
    """A decode step: `rows` rows of one new token, last-position logits only.

    The step runs without a KV cache; attending over a short cache costs little next to
    the matmuls of the weights, which are what the thread count speeds up or stalls.
    """
    import torch

    ids = _probe_ids(model, rows, 1)

    def work() -> None:
        with torch.inference_mode(), _checked_between_modules(model):
            model(input_ids=ids, use_cache=False, logits_to_keep=1)

    return work


def training_probe(model: Any, shape: tuple[int, int] = TRAINING_PROBE_SHAPE) -> Callable[[], None]:
    """Forward and backward of a tiny batch; the gradients are dropped after each call."""
    ids = _probe_ids(model, *shape)

    def work() -> None:
        try:
            with _checked_between_modules(model):
                out = model(input_ids=ids, labels=ids, use_cache=False)
            abandon_if_late()  # backward has no module hooks: it is 2/3 of the call
            out.loss.backward()
        finally:
            model.zero_grad(set_to_none=True)

    return work
