"""How a command runs its flow, the parts that keep its fixed cost down: the collector
paused over the flow's import, and a run's end that does not wait for its heartbeat thread
(while the heartbeat itself is still sent)."""

from __future__ import annotations

import gc
import time
from types import SimpleNamespace
from typing import Any

import pytest

from distillery.flows import runtime


@pytest.fixture
def frozen_back():
    """Whatever a test freezes goes back to the collector afterwards."""
    yield
    gc.unfreeze()


def test_the_collector_is_off_during_the_import_then_on_with_the_import_frozen(frozen_back):
    assert gc.isenabled()
    before = gc.get_freeze_count()
    with runtime.paused_collector():
        assert not gc.isenabled()
        made = [[i] for i in range(1000)]  # what an import makes and keeps
    assert gc.isenabled()
    assert gc.get_freeze_count() >= before + len(made)


def test_a_collector_that_was_off_stays_off(frozen_back):
    gc.disable()
    try:
        with runtime.paused_collector():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


class _Engine:
    """What Prefect's heartbeat context asks of a flow run engine."""

    heartbeat_seconds = 30
    logger = SimpleNamespace(debug=lambda *a, **k: None)

    def __init__(self) -> None:
        self.beats = 0
        self.flow_run = SimpleNamespace(state=SimpleNamespace(is_final=lambda: False))

    def _build_heartbeat_event_template(self) -> tuple[Any, Any]:
        return {}, []

    def _emit_flow_run_heartbeat(self, resource: Any, related: Any) -> None:
        self.beats += 1


def test_a_run_ends_without_waiting_for_its_heartbeat_thread_and_still_beats(monkeypatch):
    from prefect import flow_engine

    # If a Prefect release renames or reshapes this hook, the cut is gone: this fails.
    monkeypatch.setattr(flow_engine, "_send_heartbeats", flow_engine._send_heartbeats)
    runtime._unjoined_heartbeats()
    runtime._unjoined_heartbeats()  # a second run in the same process: wrapped once
    send = flow_engine._send_heartbeats
    assert getattr(send, "unjoined", False)

    engine = _Engine()
    with send(engine):
        deadline = time.monotonic() + 5
        while engine.beats == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        started = time.monotonic()
    assert engine.beats == 1  # the first heartbeat goes out as the run starts
    # Joined, the end waited for the thread's current 1 s sleep.
    assert time.monotonic() - started < 0.5
