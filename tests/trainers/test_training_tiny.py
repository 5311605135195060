"""RSFT and DPO end to end on tiny-random, through the CLI, with targets it learns in seconds."""

import json

import pytest
import torch

from distillery.generators.model_registry import load, resolve_directory
from tests.conftest import run_cli
from tests.rows import query_rows
from tests.stages import import_answers, load_prompts, select_targets, verify

pytestmark = pytest.mark.e2e

N = 16


def _suite(tmp_path, expected):
    f = tmp_path / "tiny.jsonl"
    rows = [
        {
            "prompt": f"question {i}?",
            "family": "tiny",
            "verifier": {"kind": "answer", "expected": expected, "strict": True},
        }
        for i in range(N)
    ]
    f.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return f


def _prepare(tmp_path, expected, wrong):
    wh = tmp_path / "wh"
    assert load_prompts(_suite(tmp_path, expected), wh) == N
    pids = [
        r["prompt_id"] for r in query_rows(wh, "SELECT prompt_id FROM prompts ORDER BY prompt_id")
    ]
    answers = tmp_path / "answers.jsonl"
    answers.write_text(
        "\n".join(json.dumps({"prompt_id": p, "text": t}) for p in pids for t in (expected, wrong))
        + "\n"
    )
    assert import_answers(answers, "oracle", wh) == 2 * N
    assert verify(wh) == 2 * N
    return wh


def _greedy_pass_rate(wh, model):
    r = run_cli(
        "sample",
        "--model",
        model,
        "--suite",
        "tiny",
        "--n",
        "1",
        "--temperature",
        "0",
        "--max-new-tokens",
        "6",
        warehouse=wh,
    )
    assert r.returncode == 0, r.stderr
    verify(wh, model=model)
    (row,) = query_rows(
        wh,
        "SELECT count(*) AS n, sum(v.passed::INT) AS passed FROM samples s "
        "JOIN models m USING (model_id) JOIN verdicts v USING (sample_id) "
        f"WHERE m.name = '{model}'",
    )
    assert row["n"] == N
    return row["passed"] / N


def test_rsft_teaches_tiny_random_the_target(tmp_path):
    wh = _prepare(tmp_path, "ok", "nope")
    assert _greedy_pass_rate(wh, "tiny-random") == 0.0
    train = (
        "train", "rsft", "--base", "tiny-random", "--samples-of", "oracle", "--suite", "tiny",
        "--out", "tiny-ok", "--learning-rate", "3e-3", "--max-steps", "60",
    )  # fmt: skip
    # RSFT trains on the selection the select stage stored, and says so when there is none.
    r = run_cli(*train, warehouse=wh)
    assert r.returncode == 1 and "run `distillery select --model oracle --suite tiny" in r.stderr
    r = run_cli("select", "--model", "oracle", "--suite", "tiny", warehouse=wh)
    assert r.returncode == 0, r.stderr
    assert f"{N} prompts: {N} targets (tiny {N}); 0 prompts had no passing sample" in r.stdout
    r = run_cli(*train, warehouse=wh)
    assert r.returncode == 0, r.stderr
    assert f"rsft on {N} rows: 60 steps" in r.stdout
    assert _greedy_pass_rate(wh, "tiny-ok") >= 0.9
    (job,) = query_rows(
        wh,
        """
        SELECT j.kind, j.status, len(j.sample_ids) AS n, j.metrics, m.name, p.name AS parent
        FROM training_jobs j JOIN models m ON m.model_id = j.output_model_id
        JOIN models p ON p.model_id = m.parent_id""",
    )
    assert (job["kind"], job["status"], job["n"], job["name"], job["parent"]) == (
        "rsft",
        "completed",
        N,
        "tiny-ok",
        "tiny-random",
    )
    curve = json.loads(job["metrics"])["loss_curve"]
    assert len(curve) == 60 and curve[-1][1] < curve[0][1] / 5
    exported = list((wh / "exports").glob("*/rsft-train.parquet"))
    assert len(exported) == 1
    import pyarrow.parquet as pq

    cols = pq.read_table(exported[0]).column_names
    assert {"prompt", "completion"} <= set(cols)
    # What `trl sft --dataset_name <that directory>` loads.
    import datasets

    ds = datasets.load_dataset(str(exported[0].parent), split="train")
    assert len(ds) == N
    assert ds[0]["completion"] == [{"role": "assistant", "content": "ok"}]
    assert ds[0]["prompt"][-1]["role"] == "user"
    again = run_cli(
        "train",
        "rsft",
        "--base",
        "tiny-random",
        "--samples-of",
        "oracle",
        "--out",
        "tiny-ok",
        warehouse=wh,
    )
    assert again.returncode == 1 and "a model named 'tiny-ok' exists" in again.stderr


def _margin(path, tok_prompt_pairs):
    model, tok = load(resolve_directory(path), dtype=torch.float32)
    total = 0.0
    for prompt, chosen, rejected in tok_prompt_pairs:
        scores = []
        for answer in (chosen, rejected):
            p = tok.apply_chat_template(
                [{"role": "user", "content": prompt}], add_generation_prompt=True, tokenize=True
            )
            p = list(p["input_ids"]) if isinstance(p, dict) or hasattr(p, "keys") else list(p)
            a = tok(answer + "<|im_end|>", add_special_tokens=False)["input_ids"]
            ids = torch.tensor([p + a])
            with torch.no_grad():
                logp = torch.log_softmax(model(ids).logits[0, :-1].float(), -1)
            scores.append(sum(float(logp[len(p) - 1 + i, t]) for i, t in enumerate(a)))
        total += scores[0] - scores[1]
    return total / len(tok_prompt_pairs)


def test_dpo_raises_the_margin_of_chosen_over_rejected(tmp_path):
    wh = _prepare(tmp_path, "yes", "no")
    # DPO trains on the pairs the pairs stage stored, and says so when there are none.
    r = run_cli(
        "train",
        "dpo",
        "--base",
        "tiny-random",
        "--samples-of",
        "oracle",
        "--suite",
        "tiny",
        warehouse=wh,
    )
    assert r.returncode == 1 and "run `distillery pairs --pairing pass-fail" in r.stderr, r.stderr
    r = run_cli("pairs", "--model", "oracle", "--suite", "tiny", warehouse=wh)
    assert r.returncode == 0, r.stderr
    r = run_cli(
        "train",
        "dpo",
        "--base",
        "tiny-random",
        "--samples-of",
        "oracle",
        "--suite",
        "tiny",
        "--out",
        "tiny-yes",
        "--learning-rate",
        "1e-3",
        "--max-steps",
        "20",
        "--beta",
        "0.1",
        warehouse=wh,
    )
    assert r.returncode == 0, r.stderr
    pairs = [(f"question {i}?", "yes", "no") for i in range(N)]
    from distillery.generators import tiny_random

    base_dir = tmp_path / "base"
    tok = tiny_random.build_tokenizer()
    tiny_random.build_model(tok).save_pretrained(base_dir)
    tok.save_pretrained(base_dir)
    before, after = _margin(base_dir, pairs), _margin(wh / "models" / "tiny-yes", pairs)
    assert after > before + 1.0, (before, after)
    (job,) = query_rows(wh, "SELECT kind, status, len(pair_ids) AS n FROM training_jobs")
    assert job == {"kind": "dpo", "status": "completed", "n": N}


def test_a_nan_loss_fails_the_job_and_registers_no_model(tmp_path):
    wh = _prepare(tmp_path, "ok", "nope")
    from distillery.generators import tiny_random

    broken = tmp_path / "broken"
    tok = tiny_random.build_tokenizer()
    model = tiny_random.build_model(tok)
    with torch.no_grad():
        model.model.norm.weight.fill_(float("nan"))
    model.save_pretrained(broken)
    tok.save_pretrained(broken)
    assert select_targets(wh, "oracle") == N
    r = run_cli(
        "train",
        "rsft",
        "--base",
        str(broken),
        "--samples-of",
        "oracle",
        "--out",
        "never",
        "--max-steps",
        "5",
        warehouse=wh,
    )
    assert r.returncode == 1
    line = r.stderr.strip().splitlines()[-1]
    assert line.startswith("error: training job job-")
    assert "failed: loss became NaN at step 1; no model registered" in line
    (job,) = query_rows(wh, "SELECT status, reason, output_model_id FROM training_jobs")
    assert job == {
        "status": "failed",
        "reason": "loss became NaN at step 1",
        "output_model_id": None,
    }
    names = query_rows(wh, "SELECT name FROM models")
    assert "never" not in {n["name"] for n in names}
    assert not (wh / "models" / "never").exists()
    assert not [p for p in (wh / "models").iterdir() if p.name.startswith(".never")]
