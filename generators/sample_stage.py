"""The sample stage's plain parts: its engine parameters, model and backend opening, the
summary.

`flows/sample_flow.py` shards the prompts and runs `run_sampling` per shard with these.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import pyarrow as pa
from rich.console import Console
from rich.table import Table

from distillery.config.groups import BackendChoice
from distillery.generators import model_store
from distillery.generators.backends import BACKENDS, make_backend
from distillery.generators.base import Backend, SamplingError, SamplingParams
from distillery.generators.model_registry import OPENAI, ResolvedModel, resolve
from distillery.generators.sample_config import SampleConfig
from distillery.generators.sampling import SampleSummary
from distillery.warehouse.ids import canonical_json, id_of_canonical, json_str
from distillery.warehouse.runs import recorded_run
from distillery.warehouse.store import Warehouse


def sampling_params(config: SampleConfig) -> SamplingParams:
    """The engine's parameters for `config` (the same names, one per field)."""
    return SamplingParams.of(config, config.n)


def resolve_model(
    wh: Warehouse,
    console: Console,
    model_name: str,
    backend_name: str = "transformers",
    base_url: str | None = None,
) -> ResolvedModel:
    """The model a job names (converted and cached on first use); errors name the fix."""
    if backend_name not in BACKENDS:
        raise SamplingError(f"unknown backend {backend_name!r}; use one of {', '.join(BACKENDS)}")
    if backend_name == "openai":
        return model_store.external(model_name, base_url or "", OPENAI)
    with console.status(f"resolving model {model_name} …"):
        return resolve(model_name, model_store.registered(wh))


def open_backend(
    wh: Warehouse, console: Console, model_name: str, choice: BackendChoice
) -> tuple[ResolvedModel, Backend]:
    """Resolve the model and start the backend `choice` names; errors name the fix.

    `choice.threads`: torch threads for the transformers backend on a CPU; None or 0 uses
    DISTILLERY_THREADS or measures (generators/threads.py).
    """
    model = resolve_model(wh, console, model_name, choice.backend, choice.base_url)
    return model, make_backend(model, choice, served_model=model_name)


def print_summary(console: Console, job: SampleConfig, s: SampleSummary) -> None:
    rate = s.tokens / s.seconds if s.seconds > 0 else 0.0
    console.print(
        f"[bold]{s.prompts}[/] prompts × n={job.n} = {s.requested} samples: "
        f"{s.already} already in the warehouse, [bold]{s.written}[/] written, "
        f"{s.tokens} tokens in {s.seconds:.1f}s ({rate:.0f} tok/s)"
    )
    if s.per_family:
        table = Table("family", "new samples")
        for fam, n in sorted(s.per_family.items()):
            table.add_row(fam, str(n))
        console.print(table)


# The parameters an imported sample's id hashes: it was drawn elsewhere, however it was.
IMPORTED = {"imported": True}


def imported_columns(
    rows: Sequence[tuple[str, str]], model_id: str, run_id: str
) -> dict[str, list[object]]:
    """The samples columns of imported (prompt_id, text) lines: the i-th line of a prompt
    is its sample index i, its id `content_id("smp", prompt_id, model_id, IMPORTED, 0, i)`
    (built from the JSON of its constant parts, as `SamplingParams.sample_id` is)."""
    seen: Counter[str] = Counter()
    idx = []
    for prompt_id, _ in rows:
        idx.append(seen[prompt_id])
        seen[prompt_id] += 1
    middle = f",{json_str(model_id)},{canonical_json(IMPORTED)},0,"
    ids = [
        id_of_canonical("smp", f"[{json_str(p)}{middle}{i}]")
        for (p, _), i in zip(rows, idx, strict=True)
    ]
    n = len(rows)
    return {
        "sample_id": ids,
        "prompt_id": [p for p, _ in rows],
        "model_id": [model_id] * n,
        "run_id": [run_id] * n,
        "backend": ["import"] * n,
        "idx": idx,
        "seed": [0] * n,
        "temperature": [float("nan")] * n,
        "top_p": [float("nan")] * n,
        "max_new_tokens": [0] * n,
        "text": [t for _, t in rows],
        "prompt_tokens": [0] * n,
        "completion_tokens": [0] * n,
        "finish_reason": ["stop"] * n,
        "latency_s": [0.0] * n,
    }


def import_samples(file: Path, model_name: str, root: Path) -> tuple[int, int]:
    """Completions made elsewhere (JSONL: prompt_id, text) as samples of a named model.

    The i-th line for a prompt becomes its sample index i, so re-importing a file adds
    nothing and every line is checked before anything is written.
    """
    if file.suffix != ".jsonl" or not file.is_file():
        raise SamplingError(f"{file}: need an existing .jsonl file with prompt_id and text")
    rows: list[tuple[str, str]] = []
    with open(file, encoding="utf-8") as fh:
        for n, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise SamplingError(
                    f"{file}:{n}: malformed JSON ({exc.msg}); fix the line"
                ) from None
            if not isinstance(obj, dict) or not isinstance(obj.get("prompt_id"), str):
                raise SamplingError(f"{file}:{n}: needs a 'prompt_id' string")
            if not isinstance(obj.get("text"), str):
                raise SamplingError(f"{file}:{n}: needs a 'text' string")
            rows.append((obj["prompt_id"], obj["text"]))
    if not rows:
        raise SamplingError(f"{file}: no rows to import")
    wh = Warehouse.open_existing(root)
    known = wh.existing("prompts", "prompt_id", (p for p, _ in rows))
    missing = sorted({p for p, _ in rows} - known)
    if missing:
        raise SamplingError(
            f"{file}: {len(missing)} prompt_id(s) not in the warehouse (first: {missing[0]}); "
            "load their suite with `distillery prompts load` first"
        )
    model = model_store.external(model_name, str(file.resolve()))
    with recorded_run(
        wh, "samples-import", {"file": str(file), "model_name": model_name}
    ) as run_id:
        model_store.register(wh, model, run_id)
        columns = imported_columns(rows, model.model_id, run_id)
        have = wh.existing("samples", "sample_id", columns["sample_id"])
        keep = [sid not in have for sid in columns["sample_id"]]
        table = pa.table(columns).filter(pa.array(keep))
        # Columns straight to Arrow: a million imported lines are not a million records.
        wh.write_table("samples", table)
    new = table.num_rows
    return new, len(have)
