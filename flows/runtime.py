"""How a command runs its flow: Prefect console logs quieted, the run named, errors raised.

Every stage command is a flow run, so it shows up in the Prefect UI with its parameters,
task runs, logs and artifacts. Without `PREFECT_API_URL` Prefect starts a temporary local
server for the process; with it (after `prefect server start`) the run lands on that
server. The command's own rich output is the console view; Prefect's log lines still go
to the API, so the UI keeps them, but they stay off the terminal unless
`DISTILLERY_PREFECT_LOGS=1`.
"""

from __future__ import annotations

import contextlib
import gc
import inspect
import logging
import os
from collections.abc import Callable, Iterator
from typing import Any

from rich.console import Console

LOGS_ENV = "DISTILLERY_PREFECT_LOGS"


def prepare_environment() -> None:
    """Settings Prefect reads as it is imported; a user's own values win.

    Called by `distillery/flows/__init__.py`, so it runs before any `distillery.flows`
    module imports Prefect (tests/test_packaging.py checks that no other package does).
    """
    # The machines distillery runs on often have no route out; telemetry would only log errors.
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    # Without a server, each command starts a temporary one; Prefect gives it 20 s, which a
    # busy 2-core host overruns (the command then fails before doing anything).
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")


@contextlib.contextmanager
def paused_collector() -> Iterator[None]:
    """Python's cyclic garbage collector off while a command imports its flow, then what
    the import made frozen out of later collections.

    Importing Prefect and building its pydantic models makes some 200,000 objects that
    live as long as the process; the full collections that ran over them, during the
    import and again during the run, cost 0.4-0.6 s of every stage command. Frozen
    (`gc.freeze`) they are skipped; whatever the command makes afterwards is collected
    as usual.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if enabled:
            gc.enable()


def _quiet_console_logs() -> None:
    if os.environ.get(LOGS_ENV) == "1":
        return
    from prefect.logging.configuration import ensure_logging_setup
    from prefect.logging.handlers import PrefectConsoleHandler

    # Importing Prefect has set logging up already; a second `setup_logging` cost ~0.07 s.
    ensure_logging_setup()
    loggers = [
        logging.getLogger(),
        *(logging.getLogger(name) for name in logging.root.manager.loggerDict),
    ]
    for logger in loggers:
        for handler in getattr(logger, "handlers", []):
            if isinstance(handler, PrefectConsoleHandler):
                # Above CRITICAL: failures are reported once, as the command's error line.
                handler.setLevel(logging.CRITICAL + 1)


def _unjoined_heartbeats() -> None:
    """End a flow run without waiting for its heartbeat thread.

    Prefect's heartbeat thread sleeps in 1 s steps and a sync flow run joins it at its
    end, so every command waited 0-1 s (0.5 s on average) for nothing. Prefect's async
    engine already leaves the thread unjoined (`join_on_exit=False`): it is a daemon, it
    sees the run's stop event on its next step and sends nothing for a finished run. Only
    the wait goes; heartbeats are sent as before. If a Prefect release renames the hook,
    nothing is changed (tests/flows/test_runtime.py says so).
    """
    from prefect import flow_engine

    send = getattr(flow_engine, "_send_heartbeats", None)
    if send is None or getattr(send, "unjoined", False):
        return
    if "join_on_exit" not in inspect.signature(send).parameters:
        return

    def unjoined(engine: Any, join_on_exit: bool = True) -> Any:
        return send(engine, join_on_exit=False)

    unjoined.unjoined = True  # type: ignore[attr-defined]
    flow_engine._send_heartbeats = unjoined


def _cancel_interrupted(flow: Any, flow_run: Any, state: Any) -> None:
    """`on_crashed` hook of a command's flow run: a run that Ctrl-C ended is Cancelled, not
    Crashed, and so are the task runs and sub-flow runs it leaves crashed or unfinished.

    Prefect marks a run that a KeyboardInterrupt ends as Crashed, which in the UI reads as
    a failure of the code; the user stopped it, and a rerun resumes it. Only a stop the
    command line asked for (`generators.interrupt.STOP`, set by its SIGINT handler) counts:
    a crash of any other cause keeps its state. Never raises: a hook's error would only
    be logged, and the interrupt must still end the command at once.
    """
    from distillery.generators.interrupt import stop_requested

    if not stop_requested():
        return
    try:
        from prefect.client.orchestration import get_client
        from prefect.client.schemas.filters import (
            FlowRunFilter,
            FlowRunFilterId,
            FlowRunFilterParentFlowRunId,
        )
        from prefect.states import Cancelled

        def cancelled() -> Any:
            return Cancelled(message="interrupted (Ctrl-C); rerun the same command to resume")

        with get_client(sync_client=True) as client:
            pending = [flow_run.id]
            while pending:
                run_id = pending.pop()
                run = client.read_flow_run(run_id)
                if run_id == flow_run.id or not run.state or run.state.type.value != "COMPLETED":
                    client.set_flow_run_state(run_id, cancelled(), force=True)
                this = FlowRunFilter(id=FlowRunFilterId(any_=[run_id]))
                for task_run in client.read_task_runs(flow_run_filter=this):
                    if task_run.state and task_run.state.type.value in UNFINISHED:
                        client.set_task_run_state(task_run.id, cancelled(), force=True)
                children = FlowRunFilter(
                    parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[run_id])
                )
                pending += [child.id for child in client.read_flow_runs(flow_run_filter=children)]
    except Exception:  # best effort: the run stays Crashed
        logging.getLogger(__name__).debug("could not mark the interrupted run Cancelled")


# Task run states an interrupt leaves behind that are not an outcome of their own.
UNFINISHED = frozenset({"CRASHED", "RUNNING", "PENDING", "SCHEDULED", "PAUSED"})


def api_url() -> str | None:
    """The Prefect server this process talks to (environment or profile); None: temporary."""
    from prefect.settings import PREFECT_API_URL

    return PREFECT_API_URL.value() or None


def ui_url(flow_run_id: Any) -> str | None:
    from prefect.settings import PREFECT_UI_URL

    base = PREFECT_UI_URL.value()
    return f"{base}/runs/flow-run/{flow_run_id}" if base else None


def run_flow(flow_fn: Callable[..., Any], console: Console | None = None, **params: Any) -> Any:
    """Call `flow_fn(**params)` as a flow run; return its result or raise its exception.

    With no server configured, the run goes to the local server (`local_server.py`)."""
    from prefect.settings import PREFECT_API_URL, PREFECT_UI_URL, temporary_settings

    from distillery.flows import local_server

    _quiet_console_logs()
    _unjoined_heartbeats()
    where: contextlib.AbstractContextManager[Any] = contextlib.nullcontext()
    if local_server.wanted():
        say = (lambda line: console.print(f"[dim]{line}[/]")) if console is not None else None
        server = local_server.ensure(say)
        where = temporary_settings(updates={PREFECT_API_URL: server.url, PREFECT_UI_URL: server.ui})
    with where:
        hooks = [*getattr(flow_fn, "on_crashed_hooks", []), _cancel_interrupted]
        if hasattr(flow_fn, "with_options"):  # a Prefect flow (tests pass plain functions)
            flow_fn = flow_fn.with_options(on_crashed=hooks)
        state = flow_fn(**params, return_state=True)
        if console is not None and api_url():
            link = ui_url(state.state_details.flow_run_id)
            if link:
                console.print(f"[dim]flow run: {link}[/]", highlight=False, soft_wrap=True)
    return state.result()
