"""Slots: uid blocks no two sandboxes share, and no wait without a deadline, even when a
program's exit is never reported (a process stuck in the kernel); the CPU share of a
program that runs long, and its return when the slot comes back."""

import threading
import time

import pytest

from distillery.filters.base import Verdict
from distillery.filters.sandbox import runner as sandbox_runner
from distillery.filters.sandbox import slots as sandbox_slots
from distillery.filters.sandbox.cgroup import BOOST, Cgroups
from distillery.filters.sandbox.check import check
from distillery.filters.sandbox.child import Limits
from distillery.filters.sandbox.runner import Sandbox
from distillery.filters.sandbox.slots import SlotError, Slots, UidBlock


def test_two_blocks_held_at_once_never_overlap():
    a, b = UidBlock.acquire(), UidBlock.acquire()
    try:
        assert a.index != b.index
        assert not set(a.uids) & set(b.uids)
    finally:
        a.release()
        b.release()
    c = UidBlock.acquire()  # released blocks are free again
    try:
        assert c.index == min(a.index, b.index)
    finally:
        c.release()


def test_taking_a_slot_waits_with_a_deadline():
    block = UidBlock.acquire()
    slots = Slots(block, 1)
    try:
        assert slots.take(1) == 0
        t0 = time.monotonic()
        with pytest.raises(SlotError, match="no sandbox slot came free"):
            slots.take(0.3)
        assert time.monotonic() - t0 < 2
    finally:
        slots.close()
        block.release()


def test_a_program_that_never_exits_has_its_slot_retired_and_replaced(monkeypatch):
    monkeypatch.setattr(sandbox_slots, "EXIT_GRACE_S", 0.2)
    monkeypatch.setattr(sandbox_slots, "RETIRE_AFTER_S", 0.2)
    block = UidBlock.acquire()
    slots = Slots(block, 2)
    try:
        stuck = slots.take(1)
        slots.killed(stuck, threading.Event())  # its exit is never reported
        deadline = time.monotonic() + 5
        while stuck not in slots.retired and time.monotonic() < deadline:
            time.sleep(0.05)
        assert slots.retired == {stuck}
        got = {slots.take(1), slots.take(1)}  # the other slot and the replacement
        assert stuck not in got and len(got) == 2
        slots.exited(stuck)  # a late report does not bring a retired slot back
        with pytest.raises(SlotError):
            slots.take(0.2)
    finally:
        slots.close()
        block.release()


def test_verification_goes_on_when_no_exit_is_ever_reported(monkeypatch):
    """Every program's exit lost (as if each left a process in D state): each slot is
    retired in turn and replaced, and far more programs than slots still get verdicts."""
    monkeypatch.setattr(sandbox_slots, "EXIT_GRACE_S", 0.1)
    monkeypatch.setattr(sandbox_slots, "RETIRE_AFTER_S", 0.1)
    sb = Sandbox(workers=1, limits=Limits(wall_s=5))
    monkeypatch.setattr(
        Sandbox,
        "_watch_exit",
        lambda self, pid, on_exit: type("W", (), {"event": threading.Event(), "reply": None})(),
    )
    try:
        verdicts = [
            sb.run(
                "def f():\n    return 7\n",
                "f",
                lambda call: Verdict.ok() if call() == 7 else Verdict.fail("wrong_answer"),
            )
            for _ in range(12)  # 3x the 4 slots it starts with
        ]
        assert [v.reason for v in verdicts] == ["ok"] * 12
        assert len(sb._slots.retired) >= 12 - 4
    finally:
        sb.close()


def test_every_isolation_layer_holds_on_this_machine():
    with Sandbox(workers=1) as sb:
        checks = check(sb)
    assert [c.layer for c in checks if not c.ok] == []
    assert len(checks) == 14


def _share(cgroups: Cgroups, slot: int) -> int:
    """The slot's CPU share, in units of one program's."""
    if "cpu" in cgroups.dirs:
        return int((cgroups.dirs["cpu"] / f"slot-{slot}" / "cpu.shares").read_text()) // 1024
    return int((cgroups.dirs["unified"] / f"slot-{slot}" / "cpu.weight").read_text()) // 100


def test_a_boosted_slot_is_reset_before_it_is_taken_again():
    block = UidBlock.acquire()
    cgroups = Cgroups.create(f"distillery-test-{block.index}", 64, 8, 1)
    assert cgroups is not None and cgroups.weighs, "this machine has the cpu controller"
    slots = Slots(block, 2, cgroups)
    try:
        a, b = slots.take(1), slots.take(1)
        assert (_share(cgroups, a), _share(cgroups, b)) == (1, 1)
        slots.boost(a, threading.Event())
        slots.boost(a, threading.Event())  # once is all
        assert (_share(cgroups, a), _share(cgroups, b)) == (BOOST, 1)
        # Reported gone (its exit event is set before the slot comes back): a boost that
        # comes late does nothing, and the slot comes back at one program's share.
        gone = threading.Event()
        gone.set()
        slots.boost(b, gone)
        assert _share(cgroups, b) == 1
        slots.exited(a)
        assert _share(cgroups, a) == 1
        assert slots.take(1) == a
    finally:
        slots.close()
        cgroups.close()
        block.release()


def _watch_shares(sb: Sandbox, seen: list[int], stop: threading.Event) -> None:
    assert sb.cgroups is not None
    while not stop.is_set():
        seen.append(max(_share(sb.cgroups, s) for s in list(sb.cgroups.slots)))
        time.sleep(0.005)


@pytest.mark.parametrize(("boost_after_s", "boosted"), [(5.0, False), (0.02, True)])
def test_a_program_gets_a_larger_cpu_share_only_once_it_has_run_a_while(
    monkeypatch, boost_after_s, boosted
):
    # The program takes 0.4 s: well past 20 ms, well before 5 s, however busy the host.
    monkeypatch.setattr(sandbox_runner, "BOOST_AFTER_S", boost_after_s)
    code = "import time\ndef f():\n    time.sleep(0.4)\n    return 7\n"
    seen: list[int] = []
    stop = threading.Event()
    with Sandbox(workers=1) as sb:
        watcher = threading.Thread(target=_watch_shares, args=(sb, seen, stop))
        watcher.start()
        try:
            verdict = sb.run(code, "f", lambda call: Verdict.ok(detail=str(call())))
        finally:
            stop.set()
            watcher.join()
        assert sb.cgroups is not None
        deadline = time.monotonic() + 5  # the exit is reported and the slot comes back
        while time.monotonic() < deadline:
            after = [_share(sb.cgroups, s) for s in sorted(sb.cgroups.slots)]
            if after == [1] * len(after):
                break
            time.sleep(0.01)
    assert verdict.passed and verdict.detail == "7"
    assert max(seen) == (BOOST if boosted else 1)
    assert after == [1] * len(after)
