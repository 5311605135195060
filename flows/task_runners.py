"""Where a flow's shard tasks run: threads in the flow's process, or a Dask cluster.

`threads` suits one machine (a backend's weights are loaded once per process and shared).
`dask` starts a local cluster of `dask_workers` processes, or joins the scheduler at
`dask_address` (`dask scheduler` plus `dask worker` on each machine), through
`prefect-dask`; each worker process loads the model once and keeps it for its shards.
"""

from __future__ import annotations

from typing import Any

RUNNERS = ("threads", "dask")


class RunnerError(ValueError):
    """A task runner that cannot be made; the message says what to do."""


def make_task_runner(name: str, dask_address: str | None = None, dask_workers: int = 2) -> Any:
    if name == "threads":
        from prefect.task_runners import ThreadPoolTaskRunner

        return ThreadPoolTaskRunner(max_workers=4)
    if name == "dask":
        if dask_workers < 1:
            raise RunnerError(f"--dask-workers must be at least 1 (got {dask_workers})")
        try:
            from prefect_dask import DaskTaskRunner
        except ImportError:
            raise RunnerError(
                "the dask runner needs prefect-dask: pip install 'distillery[dask]'"
            ) from None
        if dask_address:
            return DaskTaskRunner(address=dask_address)
        # One thread per worker: a shard already uses every core its process is given.
        return DaskTaskRunner(
            cluster_kwargs={"n_workers": dask_workers, "threads_per_worker": 1, "processes": True}
        )
    raise RunnerError(f"unknown runner {name!r}; use one of {', '.join(RUNNERS)}")
