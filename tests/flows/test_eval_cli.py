"""Evaluation, strategies, flips, the promotion gate and the report, end to end on
tiny-random through the CLI, with targets it learns in seconds.

The story: p₀ = tiny-random. RSFT on verified right answers gives tiny-ok, which the gate
promotes. Then a deliberately broken verifier (its train specs reward the wrong answer)
selects wrong answers; RSFT from tiny-ok on them drives the training loss down, and the
gate refuses the result because held-out pass@1 (judged by the honest test specs) fell.
"""

import json

import pytest

from tests.conftest import run_cli
from tests.flows import prefect_api
from tests.rows import query_rows
from tests.stages import import_answers, load_prompts, select_targets, verify

pytestmark = pytest.mark.e2e

N = 12


def _sql(wh, query):
    return query_rows(wh, query)


def _load(tmp_path, wh, suite, train_expected):
    f = tmp_path / f"{suite}.jsonl"
    rows = [
        {
            "prompt": f"question {i}?",
            "family": "alpha" if i % 2 else "beta",
            "split": "train",
            "verifier": {"kind": "answer", "expected": train_expected, "strict": True},
        }
        for i in range(N)
    ] + [
        {
            "prompt": f"held-out question {i}?",
            "family": "alpha" if i % 2 else "beta",
            "split": "test",
            "verifier": {"kind": "answer", "expected": "ok", "strict": True},
        }
        for i in range(N // 2)
    ]
    f.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    # the suite is named after the file
    load_prompts(f, wh)
    pids = [
        r["prompt_id"]
        for r in _sql(
            wh,
            f"SELECT prompt_id FROM prompts WHERE suite = '{suite}' AND split = 'train' "
            "ORDER BY prompt_id",
        )
    ]
    answers = tmp_path / f"{suite}-answers.jsonl"
    answers.write_text(
        "\n".join(json.dumps({"prompt_id": p, "text": t}) for p in pids for t in ("ok", "nope"))
        + "\n"
    )
    assert import_answers(answers, f"oracle-{suite}", wh) == 2 * N
    assert verify(wh, suite=suite) == 2 * N


def _train(wh, base, samples_of, suite, out):
    assert select_targets(wh, samples_of, suite) == N
    r = run_cli(
        "train",
        "rsft",
        "--base",
        base,
        "--samples-of",
        samples_of,
        "--suite",
        suite,
        "--out",
        out,
        "--learning-rate",
        "3e-3",
        "--max-steps",
        "60",
        warehouse=wh,
    )
    assert r.returncode == 0, r.stderr
    _one_task_run(r, "train-rsft", "training-progress")


EVAL = (
    "--suite",
    "tiny",
    "--split",
    "test",
    "--n",
    "4",
    "--k",
    "1,2,4",
    "--max-new-tokens",
    "6",
    "--temperature",
    "0.7",
)


def _one_task_run(r, task, progress):
    """The UI shows the stage as one task run of the command's flow run, with live progress."""
    run = prefect_api.run_id_from(r.stdout)
    assert prefect_api.task_runs(run) == [(task, "Completed")]
    assert prefect_api.artifacts(run)[progress] == ("progress", 100.0)


def _eval(wh, model, *extra):
    r = run_cli("eval", "--model", model, *EVAL, *extra, warehouse=wh)
    assert r.returncode == 0, r.stderr
    _one_task_run(r, "eval", "eval-progress")
    return r


def _promote(wh, model):
    return run_cli(
        "promote",
        "--model",
        model,
        "--suite",
        "tiny",
        "--split",
        "test",
        "--n",
        "4",
        "--max-new-tokens",
        "6",
        "--temperature",
        "0.7",
        warehouse=wh,
    )


@pytest.fixture(scope="module")
def story(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("story")
    wh = tmp_path / "wh"
    _load(tmp_path, wh, "tiny", "ok")
    _load(tmp_path, wh, "broken", "nope")  # the broken verifier rewards the wrong answer
    _train(wh, "tiny-random", "oracle-tiny", "tiny", "tiny-ok")
    _eval(
        wh,
        "tiny-random",
        "--strategies",
        "best_of_n,retry,majority",
        "--budget",
        "3",
        "--retries",
        "2",
    )
    _eval(wh, "tiny-ok")
    first = _promote(wh, "tiny-ok")
    _train(wh, "tiny-ok", "oracle-broken", "broken", "tiny-broken")
    _eval(wh, "tiny-broken")
    second = _promote(wh, "tiny-broken")
    return tmp_path, wh, first, second


def test_eval_rows_pass_at_k_and_sql_agree(story):
    _, wh, _, _ = story
    rows = _sql(
        wh,
        "SELECT m.name, e.strategy, e.k, e.n, e.prompts, e.pass_at_1, e.pass_at_k, "
        "e.ci_low, e.ci_high, e.samples_per_query, len(e.prompt_ids) AS outcomes, "
        "len(e.prompt_families) AS families, list_sum(e.passes) AS passed "
        "FROM evals e JOIN models m USING (model_id) ORDER BY m.name, e.strategy, e.k",
    )
    by = {(r["name"], r["strategy"], r["k"]): r for r in rows}
    assert len(rows) == 3 + 3 + 3 + 3  # 3 k's per model, 3 strategies on tiny-random
    for r in rows:  # the per-prompt outcomes the gate and the report compare pairwise
        assert r["outcomes"] == r["families"] == r["prompts"]
        per_prompt = r["n"] if r["strategy"] == "sample" else 1
        assert (r["passed"] or 0) / (per_prompt * r["prompts"]) == pytest.approx(r["pass_at_1"])
    for model in ("tiny-random", "tiny-ok", "tiny-broken"):
        for k in (1, 2, 4):
            r = by[(model, "sample", k)]
            assert (r["n"], r["prompts"], r["samples_per_query"]) == (4, N // 2, k)
            assert r["ci_low"] <= r["pass_at_k"] <= r["ci_high"]
        # the stored figure equals the SQL macro over the stored verdicts
        (sql,) = _sql(
            wh,
            "SELECT avg(pass_at_k(n, c, 2)) AS p FROM prompt_outcomes "
            f"WHERE model = '{model}' AND split = 'test' AND suite = 'tiny'",
        )
        assert sql["p"] == pytest.approx(by[(model, "sample", 2)]["pass_at_k"])
    assert by[("tiny-random", "sample", 1)]["pass_at_1"] == 0.0
    assert by[("tiny-ok", "sample", 1)]["pass_at_1"] >= 0.9
    assert by[("tiny-broken", "sample", 1)]["pass_at_1"] <= 0.25
    # strategies on tiny-random: each ran on all held-out prompts at its budget
    assert by[("tiny-random", "best_of_n", 3)]["samples_per_query"] == 3.0
    assert by[("tiny-random", "majority", 3)]["samples_per_query"] == 3.0
    retry = by[("tiny-random", "retry", 2)]
    assert retry["samples_per_query"] == 3.0  # tiny-random never validates: 1 + 2 retries


def test_retries_are_stored_as_retry_samples_of_the_prompt(story):
    _, wh, _, _ = story
    (row,) = _sql(
        wh,
        "SELECT count(*) AS n, count(DISTINCT prompt_id) AS prompts, min(idx) AS lo, "
        "max(idx) AS hi, count(v.sample_id) AS verified FROM samples s "
        "JOIN models m USING (model_id) LEFT JOIN verdicts v USING (sample_id) "
        "WHERE m.name = 'tiny-random' AND s.procedure = 'retry'",
    )
    assert row == {"n": 2 * (N // 2), "prompts": N // 2, "lo": 1, "hi": 2, "verified": 2 * (N // 2)}


def test_gate_promotes_the_good_model_and_refuses_the_broken_one(story):
    _, wh, first, second = story
    assert first.returncode == 0 and "PROMOTED tiny-ok" in first.stdout, first.stdout
    assert second.returncode == 3 and "REFUSED tiny-broken" in second.stdout, second.stdout
    assert "held-out pass@1 fell" in second.stdout and "not a significant gain" in second.stdout
    # its training loss went down all the same
    (job,) = _sql(
        wh,
        "SELECT j.metrics FROM training_jobs j JOIN models m ON m.model_id = j.output_model_id "
        "WHERE m.name = 'tiny-broken'",
    )
    curve = json.loads(job["metrics"])["loss_curve"]
    assert curve[-1][1] < curve[0][1] / 5
    decisions = _sql(
        wh,
        "SELECT m.name, p.promoted, len(p.reasons) AS reasons FROM promotions p "
        "JOIN models m USING (model_id) ORDER BY p.created_at",
    )
    assert [(d["name"], d["promoted"]) for d in decisions] == [
        ("tiny-ok", True),
        ("tiny-broken", False),
    ]
    assert decisions[1]["reasons"] >= 1
    promoted = _sql(wh, "SELECT name FROM models WHERE promoted")
    assert promoted == [{"name": "tiny-ok"}]


def test_flips_between_models(story):
    _, wh, _, _ = story
    r = run_cli("flips", "tiny-ok", "tiny-broken", "--format", "json", warehouse=wh)
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    assert len(rows) == N // 2  # the held-out prompts both models answered
    assert {x["flip"] for x in rows} == {"lost"}
    gained = json.loads(
        run_cli(
            "flips", "tiny-random", "tiny-ok", "--show", "gained", "--format", "json", warehouse=wh
        ).stdout
    )
    assert len(gained) == N // 2


def test_report_renders_with_plots(story):
    tmp_path, wh, _, _ = story
    out = tmp_path / "report"
    r = run_cli("report", "--out", str(out), "--suite", "tiny", "--model", "tiny-ok", warehouse=wh)
    assert r.returncode == 0, r.stderr
    text = (out / "report.md").read_text()
    assert "# distillery report: tiny-ok vs tiny-random on tiny/test" in text
    assert "gap closed" in text
    assert "repaid after" in text or "never repaid" in text
    for png in ("pass_at_k.png", "families.png", "cost.png", "amortization.png"):
        data = (out / png).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000, png
    assert "best_of_n" in text and "retry" in text and "majority" in text
    assert "decision: **promoted**" in text
    assert "Evals compared: n = 4 draws per prompt" in text
    assert "| tiny-ok pass@1 − tiny-random pass@1 | 6 |" in text


def test_bad_eval_input_is_one_line_and_writes_nothing(story):
    _, wh, _, _ = story
    before = _sql(wh, "SELECT count(*) AS n FROM evals")[0]["n"]
    for args, msg in (
        (("--n", "2", "--k", "1,4"), "pass@4 needs k between 1 and --n 2"),
        (("--strategies", "beam"), "unknown strategy 'beam'"),
        (("--k", "one"), "--k takes comma-separated integers"),
    ):
        r = run_cli("eval", "--model", "tiny-random", "--suite", "tiny", *args, warehouse=wh)
        assert r.returncode != 0
        assert msg in r.stderr, r.stderr
        assert len(r.stderr.strip().splitlines()) == 1
    r = _promote(wh, "tiny-nonexistent")
    assert r.returncode == 1 and "no model 'tiny-nonexistent'" in r.stderr
    assert _sql(wh, "SELECT count(*) AS n FROM evals")[0]["n"] == before
