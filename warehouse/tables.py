"""Table names, keys and dedup policies, defined once; Arrow schemas derived from the records."""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import pyarrow as pa

from distillery.warehouse import records

PROMPTS = "prompts"
MODELS = "models"
SAMPLES = "samples"
VERDICTS = "verdicts"
PAIRS = "pairs"
SELECTIONS = "selections"
TRAINING_JOBS = "training_jobs"
EVALS = "evals"
PROMOTIONS = "promotions"
RUNS = "runs"
CONTEXTS = "contexts"


@dataclass(frozen=True)
class TableSpec:
    name: str
    record: type
    key: tuple[str, ...]
    # "first": content-addressed rows, a rerun's copy is a duplicate.
    # "last": rows that record a state change (a run finishing, a model promoted).
    keep: Literal["first", "last"]
    # (column, its former name): files written before a rename still read under the new
    # name (the views coalesce the two), so an existing warehouse needs no rewrite.
    renamed: tuple[tuple[str, str], ...] = ()

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(self.record))

    @property
    def schema(self) -> pa.Schema:
        return _schema(self.record)


TABLES: dict[str, TableSpec] = {
    spec.name: spec
    for spec in (
        TableSpec(PROMPTS, records.PromptRecord, ("prompt_id",), "first"),
        TableSpec(MODELS, records.ModelRecord, ("model_id",), "last"),
        TableSpec(
            SAMPLES, records.SampleRecord, ("sample_id",), "first", (("procedure", "strategy"),)
        ),
        TableSpec(
            VERDICTS, records.VerdictRecord, ("sample_id", "verifier", "verifier_version"), "first"
        ),
        TableSpec(PAIRS, records.PairRecord, ("pair_id",), "first", (("pairing", "strategy"),)),
        # "last": storing the same selection again makes it the latest for its scope.
        TableSpec(SELECTIONS, records.SelectionRecord, ("selection_id",), "last"),
        TableSpec(TRAINING_JOBS, records.TrainingJobRecord, ("job_id",), "last"),
        TableSpec(EVALS, records.EvalRecord, ("eval_id",), "first"),
        TableSpec(PROMOTIONS, records.PromotionRecord, ("promotion_id",), "first"),
        TableSpec(RUNS, records.RunRecord, ("run_id",), "last"),
        TableSpec(CONTEXTS, records.ContextRecord, ("context_id",), "first"),
    )
}

RECORD_TABLE: dict[type, str] = {spec.record: spec.name for spec in TABLES.values()}

_SCALARS: dict[Any, pa.DataType] = {
    str: pa.string(),
    int: pa.int64(),
    float: pa.float64(),
    bool: pa.bool_(),
    datetime: pa.timestamp("us", tz="UTC"),
}


@functools.cache
def _schema(record: type) -> pa.Schema:
    # Cached: resolving the hints compiles every annotation string (~1 ms a call), and
    # every write and every view definition asks for its table's schema.
    hints = typing.get_type_hints(record)
    return pa.schema([_arrow_field(f.name, hints[f.name]) for f in dataclasses.fields(record)])


def _arrow_field(name: str, hint: Any) -> pa.Field:
    nullable = False
    args = typing.get_args(hint)
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        non_null = [a for a in args if a is not type(None)]
        nullable = len(non_null) != len(args)
        (hint,) = non_null
    if typing.get_origin(hint) is list:
        (item,) = typing.get_args(hint)
        return pa.field(name, pa.list_(_SCALARS[item]), nullable=nullable)
    return pa.field(name, _SCALARS[hint], nullable=nullable)
