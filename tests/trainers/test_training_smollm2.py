"""A few LoRA steps on the real SmolLM2-135M through `distillery train rsft`, then sampling
from the registered output."""

import json

import pytest

from tests.conftest import run_cli
from tests.rows import query_rows
from tests.stages import import_answers, load_prompts, select_targets, verify

pytestmark = [pytest.mark.slow, pytest.mark.e2e]


def test_lora_rsft_on_smollm2_registers_a_model_that_samples(tmp_path):
    wh = tmp_path / "wh"
    load_prompts("seeds", wh)
    rows = query_rows(
        wh,
        "SELECT prompt_id, reference FROM prompts WHERE split = 'train' AND family = 'number' "
        "ORDER BY prompt_id LIMIT 8",
    )
    f = tmp_path / "oracle.jsonl"
    f.write_text(
        "\n".join(json.dumps({"prompt_id": r["prompt_id"], "text": r["reference"]}) for r in rows)
        + "\n"
    )
    # Preparing the input in-process; the command under test is `train rsft`.
    assert import_answers(f, "oracle", wh) == 8
    assert verify(wh) == 8
    assert select_targets(wh, "oracle") == 8
    r = run_cli(
        "train",
        "rsft",
        "--base",
        "smollm2-135m",
        "--samples-of",
        "oracle",
        "--out",
        "smol-lora",
        "--use-peft",
        "--learning-rate",
        "1e-4",
        "--max-steps",
        "3",
        "--per-device-train-batch-size",
        "4",
        "--max-length",
        "128",
        warehouse=wh,
    )
    assert r.returncode == 0, r.stderr
    assert "rsft on 8 rows: 3 steps" in r.stdout
    (job,) = query_rows(
        wh,
        """
        SELECT j.status, len(j.sample_ids) AS n, j.config, m.name, p.name AS parent,
               m.source_kind FROM training_jobs j JOIN models m ON m.model_id = j.output_model_id
        JOIN models p ON p.model_id = j.base_model_id""",
    )
    assert (job["status"], job["n"], job["name"], job["parent"], job["source_kind"]) == (
        "completed",
        8,
        "smol-lora",
        "smollm2-135m",
        "trained",
    )
    assert json.loads(job["config"])["use_peft"] is True
    curve = json.loads(query_rows(wh, "SELECT metrics FROM training_jobs")[0]["metrics"])[
        "loss_curve"
    ]
    assert [step for step, _ in curve] == [1, 2, 3]
    s = run_cli(
        "sample",
        "--model",
        "smol-lora",
        "--per-family",
        "1",
        "--n",
        "1",
        "--max-new-tokens",
        "8",
        warehouse=wh,
        process=True,  # the trained model's directory, loaded by a fresh process
    )
    assert s.returncode == 0, s.stderr
    assert "5 prompts × n=1 = 5 samples: 0 already in the warehouse, 5 written" in s.stdout
