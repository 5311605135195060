"""`distillery verify` end to end: references pass, wrong answers fail with their reasons,
reruns verify nothing twice, a new verifier version re-verifies, bad specs stop the run."""

import json

import pytest

from distillery.filters import registry
from distillery.filters.registry import Verifiers
from distillery.filters.verification import VerifyError, select_pending
from distillery.warehouse.records import PromptRecord
from distillery.warehouse.store import Warehouse
from tests.conftest import run_cli
from tests.flows import prefect_api
from tests.rows import query_rows
from tests.stages import import_answers, load_prompts

pytestmark = pytest.mark.e2e

WRONG = {
    "number": "The answer is 7.",
    "date": "next monday",
    "json": '{"city": 1}',
    "code": "```python\ndef nothing():\n    pass\n```",
    "summary": "One. Two. Three 🎉.",
}
REASON = {
    "number": "extra_text",
    "date": "format_mismatch",
    "json": "schema_mismatch",
    "code": "missing_entry_point",
    "summary": "style_violation",
}


def _prompts(wh, per_family=3):
    rows = query_rows(
        wh,
        "SELECT prompt_id, family, reference FROM prompts "
        "QUALIFY row_number() OVER (PARTITION BY family ORDER BY prompt_id) "
        f"<= {per_family} ORDER BY family, prompt_id",
    )
    assert len(rows) == 5 * per_family
    return rows


@pytest.fixture
def loaded(tmp_path):
    wh = tmp_path / "wh"
    load_prompts("seeds", wh)  # prepared in-process: `verify` is the command under test
    rows = _prompts(wh)
    f = tmp_path / "answers.jsonl"
    lines = [{"prompt_id": r["prompt_id"], "text": r["reference"]} for r in rows]
    lines += [{"prompt_id": r["prompt_id"], "text": WRONG[r["family"]]} for r in rows]
    f.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    assert import_answers(f, "oracle", wh) == len(lines)
    return wh


def test_references_pass_and_wrong_answers_fail_with_reasons(loaded):
    r = run_cli("verify", warehouse=loaded)
    assert r.returncode == 0, r.stderr
    assert "30 samples: 0 already verified, 30 verdicts written" in r.stdout
    # In the UI: one `verify` task run, its progress at 100%, its summary in the run's Logs.
    run = prefect_api.run_id_from(r.stdout)
    assert prefect_api.task_runs(run) == [("verify", "Completed")]
    assert prefect_api.artifacts(run)["verify-progress"] == ("progress", 100.0)
    logs = prefect_api.logs(run)
    assert any("30 samples: 0 already verified, 30 verdicts written" in x for x in logs), logs
    rows = query_rows(
        loaded,
        """
        SELECT p.family, s.idx, v.passed, v.reason, v.verifier, v.verifier_version
        FROM verdicts v JOIN samples s USING (sample_id) JOIN prompts p USING (prompt_id)
        ORDER BY p.family, s.prompt_id, s.idx""",
    )
    assert len(rows) == 30
    for x in rows:
        if x["idx"] == 0:  # the reference answer
            assert (x["passed"], x["reason"]) == (True, "ok"), x
        else:
            assert (x["passed"], x["reason"]) == (False, REASON[x["family"]]), x
        assert x["verifier_version"] == "1"
    again = run_cli("verify", warehouse=loaded)
    assert "30 samples: 30 already verified, 0 verdicts written" in again.stdout


def test_a_new_verifier_version_reverifies_only_its_kind(loaded, monkeypatch):
    run_cli("verify", warehouse=loaded)
    wh = Warehouse.open_existing(loaded)
    monkeypatch.setitem(registry._VERSIONS, "regex", "2")
    pending, already = select_pending(wh, None, None, None, Verifiers())
    assert (len(pending), already) == (6, 24)
    assert {p.verifier for p in pending} == {"regex"}


def test_filters_and_bad_specs(loaded):
    r = run_cli("verify", "--model", "nobody", warehouse=loaded)
    assert r.returncode == 1 and "no samples match" in r.stderr
    wh = Warehouse.open_existing(loaded)
    pid = query_rows(loaded, "SELECT prompt_id FROM samples LIMIT 1")[0]["prompt_id"]
    (rec,) = [r for r in wh.arrow("SELECT * FROM prompts WHERE prompt_id = ?", [pid]).to_pylist()]
    # A later row of the same prompt with a broken spec: the view keeps the first, so write
    # a new prompt instead and a sample for it.
    bad = PromptRecord(
        "prm-bad",
        rec["suite"],
        rec["family"],
        rec["split"],
        rec["messages"],
        json.dumps({"kind": "nope"}),
        None,
        "run-x",
    )
    wh.write([bad])
    with pytest.raises(VerifyError, match="unknown verifier kind 'nope'"):
        _add_sample_and_select(wh, "prm-bad")
    r = run_cli("verify", warehouse=loaded)
    assert r.returncode == 1
    assert r.stderr.strip().splitlines() == [
        "error: malformed verifier spec in the warehouse: verifier: unknown verifier kind 'nope'; "
        "use one of code_tests, json_schema, answer, regex, style, all_of, any_of, judge"
    ]
    assert wh.query("SELECT count(*) FROM verdicts")[0][0] == 0


def _add_sample_and_select(wh, prompt_id):
    from distillery.warehouse.records import SampleRecord

    wh.write(
        [
            SampleRecord(
                "smp-bad",
                prompt_id,
                "mdl-x",
                "run-x",
                "import",
                0,
                0,
                0.0,
                1.0,
                1,
                "text",
                0,
                0,
                "stop",
                0.0,
            )
        ]
    )
    return select_pending(wh, None, None, None, Verifiers())


def test_pairs_from_verdicts(loaded):
    assert run_cli("verify", warehouse=loaded).returncode == 0
    (n,) = query_rows(
        loaded,
        "SELECT count(DISTINCT prompt_id) AS n FROM samples "
        "JOIN prompts USING (prompt_id) WHERE split = 'train'",
    )
    n = n["n"]
    assert 0 < n < 15
    r = run_cli("pairs", "--pairing", "pass-fail", warehouse=loaded)
    assert r.returncode == 0, r.stderr
    assert (
        f"{n} prompts: {n} pairs ({n} new), 0 all-pass and 0 all-fail prompts gave none" in r.stdout
    )
    again = run_cli("pairs", warehouse=loaded)
    assert f"{n} pairs (0 new)" in again.stdout
    rows = query_rows(
        loaded,
        """
        SELECT pr.pairing, pr.margin, c.idx AS chosen_idx, j.idx AS rejected_idx,
               vc.passed AS chosen_passed, vj.passed AS rejected_passed
        FROM pairs pr JOIN samples c ON c.sample_id = pr.chosen_id
        JOIN samples j ON j.sample_id = pr.rejected_id
        JOIN verdicts vc ON vc.sample_id = c.sample_id
        JOIN verdicts vj ON vj.sample_id = j.sample_id""",
    )
    assert len(rows) == n
    for x in rows:
        assert (x["chosen_idx"], x["rejected_idx"]) == (0, 1)  # the reference over the wrong one
        assert (x["chosen_passed"], x["rejected_passed"]) == (True, False)
        assert x["pairing"] == "pass-fail" and x["margin"] > 0
    bad = run_cli("pairs", "--pairing", "coinflip", warehouse=loaded)
    assert bad.returncode == 2 and "Invalid value for '--pairing'" in bad.stderr
