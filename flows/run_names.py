"""Flow-run names that say what ran, e.g. `sample smollm2-135m seeds/train n=8`.

Prefect names a run after an adjective and an animal unless the flow says otherwise; a
name built from the run's own parameters lets the UI's run list be read without opening
each run. A field spec is a parameter path (`config.model`), several joined by `/`
(`config.suite/config.split`), or `label=path` for a value that needs its name
(`n=config.n`). Unset values are left out.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def _value(parameters: dict[str, Any], path: str) -> Any:
    head, *rest = path.split(".")
    value: Any = parameters.get(head)
    for attr in rest:
        # A deployment's run may hand over the config as a dict, a direct call as the object.
        value = value.get(attr) if isinstance(value, dict) else getattr(value, attr, None)
    if isinstance(value, list | tuple):
        value = ",".join(map(str, value))
    return value


def describe(stage: str, parameters: dict[str, Any], fields: tuple[str, ...]) -> str:
    """`stage` followed by each field's value, skipping unset ones."""
    parts = [stage]
    for spec in fields:
        label, _, path = spec.rpartition("=")
        values = [_value(parameters, p) for p in path.split("/")]
        shown = "/".join(str(v) for v in values if v not in (None, ""))
        if shown:
            parts.append(f"{label}={shown}" if label else shown)
    return " ".join(parts)


def run_name(stage: str, *fields: str) -> Callable[[], str]:
    """A `flow_run_name` for `@flow`: the stage and the run's `fields`."""

    def name() -> str:
        from prefect.runtime import flow_run

        return describe(stage, flow_run.parameters, fields)

    return name
