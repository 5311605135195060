"""Models in the warehouse: register a resolved model once, look up registered names."""

from __future__ import annotations

from distillery.generators.model_registry import IMPORTED, OPENAI, ResolvedModel
from distillery.warehouse.ids import content_id
from distillery.warehouse.records import ModelRecord
from distillery.warehouse.store import Warehouse


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


def model_row(wh: Warehouse, name_or_id: str) -> ModelRecord | None:
    """The latest row of a registered model, by name or id."""
    from dataclasses import fields

    cols = [f.name for f in fields(ModelRecord)]
    rows = wh.query(
        f"SELECT {', '.join(cols)} FROM models WHERE name = ? OR model_id = ? "
        "ORDER BY created_at DESC LIMIT 1",
        [name_or_id, name_or_id],
    )
    return ModelRecord(*rows[0]) if rows else None


def set_promoted(wh: Warehouse, model_id: str, run_id: str) -> None:
    """Make `model_id` the promoted model; whichever was promoted before no longer is."""
    from dataclasses import replace

    from distillery.warehouse.records import utcnow

    now = utcnow()
    rows = []
    for (mid,) in wh.query(
        "SELECT model_id FROM models WHERE promoted AND model_id != ?", [model_id]
    ):
        old = model_row(wh, mid)
        if old is not None:
            rows.append(replace(old, promoted=False, run_id=run_id, created_at=now))
    new = model_row(wh, model_id)
    if new is None:
        raise ValueError(f"model {model_id} is not registered")
    rows.append(replace(new, promoted=True, run_id=run_id, created_at=now))
    wh.write(rows)
