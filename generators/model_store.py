"""Models in the warehouse: register a resolved model once, look up registered names."""

from __future__ import annotations

from generators.model_registry import IMPORTED, OPENAI, ResolvedModel
from warehouse.ids import content_id
from warehouse.records import ModelRecord
from warehouse.store import Warehouse


def registered(wh: Warehouse) -> dict[str, ResolvedModel]:
    """Named models with weights on disk (trained outputs, imported directories)."""
    rows = wh.query(
        "SELECT name, model_id, source, source_kind, path, trained, parent_id FROM models "
        "WHERE path IS NOT NULL ORDER BY created_at"
    )
    return {
        name: ResolvedModel(mid, name, source, kind, path, trained, parent)
        for name, mid, source, kind, path, trained, parent in rows
    }


def register(wh: Warehouse, model: ResolvedModel, run_id: str) -> None:
    """Write the model's row unless it exists: rewriting would reset its promoted flag."""
    if wh.existing("models", "model_id", [model.model_id]):
        return
    wh.write(
        [
            ModelRecord(
                model_id=model.model_id,
                name=model.name,
                source=model.source,
                source_kind=model.source_kind,
                path=model.path,
                parent_id=model.parent_id,
                job_id=None,
                trained=model.trained,
                promoted=False,
                run_id=run_id,
            )
        ]
    )


def external(name: str, source: str, kind: str = IMPORTED) -> ResolvedModel:
    """A model whose weights we do not hold: a server endpoint or imported completions."""
    if kind not in (IMPORTED, OPENAI):
        raise ValueError(kind)
    return ResolvedModel(content_id("mdl", kind, source, name), name, source, kind, None, True)
