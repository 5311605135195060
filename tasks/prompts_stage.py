"""The prompts job as a plain function: load a suite, write the prompts the warehouse lacks."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

from distillery.tasks.registry import load_suite
from distillery.warehouse.runs import recorded_run
from distillery.warehouse.store import Warehouse


@dataclass(frozen=True)
class PromptsLoaded:
    suite: str
    new: int
    total: int
    per_family_split: dict[str, dict[str, int]]


def prompts_job(source: str, suite: str | None, root: Path, console: Console) -> PromptsLoaded:
    name, prompts = load_suite(source, suite)
    wh = Warehouse.open(root)
    with recorded_run(wh, "prompts-load", {"source": source, "suite": name}) as run_id:
        have = wh.existing("prompts", "prompt_id", (p.prompt_id for p in prompts))
        new = [p.to_record(run_id) for p in prompts if p.prompt_id not in have]
        # A file may repeat a prompt; keep its first row.
        new = list({r.prompt_id: r for r in reversed(new)}.values())[::-1]
        wh.write(new)
    counts = Counter((p.family, p.split) for p in prompts)
    families = sorted({f for f, _ in counts})
    loaded = PromptsLoaded(
        name,
        len(new),
        len(prompts),
        {f: {"train": counts[(f, "train")], "test": counts[(f, "test")]} for f in families},
    )
    console.print(f"suite {name}: {len(new)} new, {len(prompts) - len(new)} already loaded")
    table = Table("family", "train", "test")
    for fam, c in loaded.per_family_split.items():
        table.add_row(fam, str(c["train"]), str(c["test"]))
    console.print(table)
    return loaded
