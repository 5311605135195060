import pyarrow as pa

from distillery.warehouse.tables import RECORD_TABLE, TABLES


def test_every_design_table_exists_with_its_key():
    assert set(TABLES) == {
        "prompts",
        "models",
        "samples",
        "verdicts",
        "pairs",
        "selections",  # the RSFT targets the select stage stored
        "training_jobs",
        "evals",
        "promotions",  # beyond DESIGN.md's list: the promotion gate's decisions
        "runs",
        "contexts",  # what a "prompted" search put before a prompt
    }
    assert TABLES["verdicts"].key == ("sample_id", "verifier", "verifier_version")
    for spec in TABLES.values():
        assert set(spec.key) <= set(spec.columns)
        assert "run_id" in spec.columns and "created_at" in spec.columns
        assert RECORD_TABLE[spec.record] == spec.name


def test_schema_types_follow_the_record_hints():
    s = TABLES["samples"].schema
    assert s.field("idx").type == pa.int64()
    assert s.field("temperature").type == pa.float64()
    assert s.field("created_at").type == pa.timestamp("us", tz="UTC")
    assert not s.field("text").nullable
    j = TABLES["training_jobs"].schema
    assert j.field("sample_ids").type == pa.list_(pa.string())
    assert j.field("output_model_id").nullable
