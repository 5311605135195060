"""The `samples-import` flow: completions made elsewhere as samples of a named model
(`distillery samples import`)."""

from __future__ import annotations

from pathlib import Path

from prefect import flow

from distillery.flows import artifacts
from distillery.flows.run_names import run_name


@flow(name="samples-import", flow_run_name=run_name("samples-import", "model_name", "file"))
def import_flow(file: str, model_name: str, warehouse: str = "warehouse-data") -> tuple[int, int]:
    """Completions made elsewhere (JSONL: prompt_id, text) as samples of a named model."""
    from distillery.generators.sample_stage import import_samples

    written, skipped = import_samples(Path(file), model_name, Path(warehouse))
    artifacts.publish_markdown(
        "import-summary",
        f"## Imported samples\n\n**{written}** samples of {model_name} from `{file}` "
        f"({skipped} already present).\n",
    )
    return written, skipped
