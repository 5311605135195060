"""The training stage without TRL: `build_training` maps arguments onto the right job,
config and launcher; the job's data step picks exact sample and pair ids from verified rows
in a real warehouse; `run_training` records a job around a stand-in launcher on tiny-random
(built in-process in well under a second). TRL itself runs in test_training_tiny.py."""

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from distillery.curate.pairs import PairConfig
from distillery.curate.selection import SelectionConfig
from distillery.filters import reasons
from distillery.generators.model_registry import ResolvedModel, resolve
from distillery.trainers.base import TrainResult
from distillery.trainers.dpo_trainer import DPOLauncher, DPOTrainConfig
from distillery.trainers.rsft_trainer import RSFTConfig, RSFTLauncher
from distillery.trainers.train_stage import RSFT_LR, build_training
from distillery.trainers.training_job import TrainingError, TrainJob, _data, run_training
from distillery.warehouse.ids import content_id
from distillery.warehouse.records import (
    ModelRecord,
    PromptRecord,
    SampleRecord,
    VerdictRecord,
)

# ------------------------------------------------------------------ build_training


def test_rsft_defaults():
    job, config, launcher = build_training("rsft", "base", "out")
    assert job == TrainJob("rsft", "base", "out", None, None, selection=SelectionConfig())
    assert job.selection == SelectionConfig("all", 4, None)
    assert (job.split, job.pairs) == ("train", PairConfig())
    assert type(config) is RSFTConfig
    assert config == RSFTConfig(
        learning_rate=1e-4,
        epochs=1.0,
        max_steps=-1,
        batch_size=8,
        max_length=512,
        lora=False,
        threads=None,
    )
    assert RSFT_LR == 1e-4
    assert isinstance(launcher, RSFTLauncher)
    assert (launcher.kind, launcher.config) == ("rsft", config)


def test_rsft_arguments_reach_the_selection_and_the_config():
    job, config, launcher = build_training(
        "rsft",
        "smollm2-135m",
        "tuned",
        "seeds",
        "teacher",
        mode="best",
        per_prompt=2,
        per_family=3,
        learning_rate=3e-3,
        epochs=2.0,
        max_steps=5,
        batch_size=2,
        max_length=64,
        lora=True,
        threads=1,
    )
    assert (job.kind, job.base, job.out, job.suite, job.model_samples) == (
        "rsft",
        "smollm2-135m",
        "tuned",
        "seeds",
        "teacher",
    )
    assert job.selection == SelectionConfig("best", 2, 3)
    assert config == RSFTConfig(
        learning_rate=3e-3,
        epochs=2.0,
        max_steps=5,
        batch_size=2,
        max_length=64,
        lora=True,
        threads=1,
    )
    assert launcher.config is config


def test_dpo_defaults():
    job, config, launcher = build_training("dpo", "base", "out")
    assert job == TrainJob("dpo", "base", "out", None, None, pairs=PairConfig())
    assert job.pairs == PairConfig("pass-fail", 4, 0.0)
    assert job.selection == SelectionConfig()
    assert type(config) is DPOTrainConfig
    assert (config.learning_rate, config.beta, config.loss) == (5e-6, 0.1, "sigmoid")
    assert (config.epochs, config.max_steps, config.batch_size, config.max_length) == (
        1.0,
        -1,
        8,
        512,
    )
    assert isinstance(launcher, DPOLauncher)
    assert (launcher.kind, launcher.config) == ("dpo", config)


def test_dpo_arguments_reach_the_pairs_and_the_config():
    job, config, _ = build_training(
        "dpo",
        "base",
        "out",
        "s",
        "teacher",
        strategy="all",
        max_per_prompt=2,
        min_margin=0.5,
        beta=0.2,
        loss="ipo",
        learning_rate=1e-5,
        lora=True,
        max_steps=3,
    )
    assert (job.suite, job.model_samples) == ("s", "teacher")
    assert job.pairs == PairConfig("all", 2, 0.5)
    assert config == DPOTrainConfig(
        learning_rate=1e-5, beta=0.2, loss="ipo", lora=True, max_steps=3
    )


@pytest.mark.parametrize(
    ("method", "bad", "message"),
    [
        ("ppo", {}, "unknown training method 'ppo'; use rsft or dpo"),
        ("rsft", {"mode": "top"}, "selection mode must be all or best (got 'top')"),
        ("rsft", {"per_prompt": 0}, "per-prompt and per-family caps must be at least 1"),
        ("rsft", {"per_family": 0}, "per-prompt and per-family caps must be at least 1"),
        (
            "dpo",
            {"strategy": "best"},
            "--strategy must be one of pass-fail, best-worst, all (got 'best')",
        ),
        ("dpo", {"max_per_prompt": 0}, "--max-per-prompt must be at least 1 (got 0)"),
        ("dpo", {"min_margin": -0.5}, "--min-margin must be >= 0 (got -0.5)"),
        ("dpo", {"beta": 0.0}, "--beta must be > 0 (got 0.0)"),
        ("dpo", {"loss": "hinge"}, "--loss must be one of sigmoid, ipo (got 'hinge')"),
        (
            "rsft",
            {"learning_rate": -1e-4},
            "learning rate must be > 0 and batch size / grad accum >= 1",
        ),
        # 0 is a value, not "use the default": refused like any other rate <= 0.
        (
            "rsft",
            {"learning_rate": 0.0},
            "learning rate must be > 0 and batch size / grad accum >= 1",
        ),
        (
            "dpo",
            {"learning_rate": 0.0},
            "learning rate must be > 0 and batch size / grad accum >= 1",
        ),
        ("dpo", {"batch_size": 0}, "learning rate must be > 0 and batch size / grad accum >= 1"),
        ("rsft", {"max_steps": 0}, "train for at least one step: --max-steps > 0 or --epochs > 0"),
        ("dpo", {"epochs": 0.0}, "train for at least one step: --max-steps > 0 or --epochs > 0"),
        ("rsft", {"threads": -1}, "--threads must be 0 (measure) or a positive count (got -1)"),
    ],
)
def test_bad_values_are_one_line_training_errors(method, bad, message):
    with pytest.raises(TrainingError) as err:
        build_training(method, "base", "out", **bad)
    assert str(err.value) == message
    assert err.value.__cause__ is None  # `from None`: the message is the whole story


# ------------------------------------------------------------------ the data step

BASE = ResolvedModel("mdl-base", "base", "base", "test", None, True)
T0 = datetime(2025, 1, 1, tzinfo=UTC)
# prompt_id -> (family, split)
PROMPTS = {
    "p1": ("alpha", "train"),
    "p2": ("alpha", "train"),
    "p3": ("beta", "train"),
    "p4": ("beta", "train"),
    "p5": ("alpha", "test"),
}
# (sample_id, prompt_id, model_id, text, procedure, verdicts as (passed, reason) oldest first)
OK, WRONG = (True, reasons.OK), (False, reasons.WRONG_ANSWER)
SAMPLES = [
    ("s1a", "p1", "mdl-base", "ok", "sample", [OK]),
    ("s1b", "p1", "mdl-base", "OK ", "sample", [OK]),  # "ok" again once normalised
    ("s1c", "p1", "mdl-base", "fine", "sample", [OK]),
    ("s1d", "p1", "mdl-base", "no", "sample", [WRONG]),
    ("s1e", "p1", "mdl-base", "nope, wrong", "sample", [WRONG]),
    ("s1f", "p1", "mdl-base", "unjudged", "sample", []),  # no verdict: not a candidate
    ("s2a", "p2", "mdl-base", "x", "sample", [WRONG]),
    ("s2b", "p2", "mdl-base", "y", "sample", [WRONG]),
    ("s3a", "p3", "mdl-base", "a", "sample", [OK]),
    ("s3b", "p3", "mdl-base", "bb", "sample", [OK]),
    ("s3c", "p3", "mdl-base", "ccc", "sample", [OK]),
    ("s3d", "p3", "mdl-base", "dddd", "sample", [OK]),
    ("s3e", "p3", "mdl-base", "eeeee", "sample", [OK]),
    ("s4a", "p4", "mdl-base", "right", "retry", [OK]),  # a retry is a target ...
    ("s4b", "p4", "mdl-base", "wrong", "sample", [WRONG]),
    ("s4c", "p4", "mdl-base", "bad retry", "retry", [WRONG]),  # ... but never a rejection
    ("s4d", "p4", "mdl-base", "crash", "sample", [(False, reasons.VERIFIER_ERROR)]),
    ("s4e", "p4", "mdl-base", "flipped", "sample", [OK, WRONG]),  # its latest verdict counts
    ("s5a", "p5", "mdl-base", "ok", "sample", [OK]),  # test split
    ("o1a", "p1", "mdl-other", "other ok", "sample", [OK]),  # another model's
    ("f2a", "p2", "mdl-fail", "z", "sample", [WRONG]),
]


@pytest.fixture
def data_wh(wh):
    wh.write(
        [
            PromptRecord(
                pid,
                "s",
                fam,
                split,
                json.dumps([{"role": "user", "content": f"question {pid}?"}]),
                json.dumps({"kind": "answer", "expected": "ok"}),
                None,
                "run-x",
            )
            for pid, (fam, split) in PROMPTS.items()
        ]
        + [
            ModelRecord(mid, name, "x", "imported", None, None, None, True, False, "run-x")
            for mid, name in (("mdl-other", "other"), ("mdl-fail", "failer"))
        ]
    )
    samples, verdicts = [], []
    for sid, pid, mid, text, procedure, judged in SAMPLES:
        samples.append(
            SampleRecord(
                sid,
                pid,
                mid,
                "run-x",
                "imported",
                0,
                0,
                0.8,
                0.95,
                16,
                text,
                1,
                1,
                "stop",
                0.0,
                strategy=procedure,
            )
        )
        for i, (passed, reason) in enumerate(judged):
            verdicts.append(
                VerdictRecord(
                    sid,
                    "answer",
                    str(i + 1),  # a later verifier version judged it again
                    passed,
                    1.0 if passed else 0.0,
                    reason,
                    "",
                    0.0,
                    "run-x",
                    created_at=T0 + timedelta(minutes=i),
                )
            )
    wh.write(samples)
    wh.write(verdicts)
    return wh


def rsft(**selection):
    return TrainJob("rsft", "base", "out", "s", None, selection=SelectionConfig(**selection))


def dpo(**pairs):
    return TrainJob("dpo", "base", "out", "s", None, pairs=PairConfig(**pairs))


def pair_id(prompt, chosen, rejected, strategy="pass-fail"):
    return content_id("pair", prompt, chosen, rejected, strategy)


def test_rsft_data_is_every_distinct_passing_train_sample_capped_per_prompt(data_wh):
    sample_ids, pair_ids, rows = _data(data_wh, rsft(), BASE, "run-t")
    # alpha then beta; p1's "OK " repeats "ok"; p2 never passes; p3's longest is capped; p4's
    # retry passes; s4e's latest verdict fails; test split, other models, no verdict: out.
    assert sample_ids == ["s1a", "s1c", "s3a", "s3b", "s3c", "s3d", "s4a"]
    assert pair_ids == []
    assert [r["sample_id"] for r in rows] == sample_ids
    assert rows[0] == {
        "sample_id": "s1a",
        "prompt": [{"role": "user", "content": "question p1?"}],
        "completion": [{"role": "assistant", "content": "ok"}],
    }
    assert [r["completion"][0]["content"] for r in rows] == [
        "ok",
        "fine",
        "a",
        "bb",
        "ccc",
        "dddd",
        "right",
    ]
    assert data_wh.query("SELECT count(*) FROM pairs") == [(0,)]


@pytest.mark.parametrize(
    ("selection", "expected"),
    [
        ({"mode": "best"}, ["s1a", "s3a", "s4a"]),
        ({"per_prompt": 1}, ["s1a", "s3a", "s4a"]),
        ({"per_prompt": 2}, ["s1a", "s1c", "s3a", "s3b", "s4a"]),
        # Round-robin within a family: beta gives one from each prompt before a second.
        ({"per_family": 2}, ["s1a", "s1c", "s3a", "s4a"]),
        ({"per_family": 3}, ["s1a", "s1c", "s3a", "s4a", "s3b"]),
    ],
)
def test_rsft_selection_settings_choose_exact_ids(data_wh, selection, expected):
    sample_ids, _, _ = _data(data_wh, rsft(**selection), BASE, "run-t")
    assert sample_ids == expected


def test_samples_of_another_model_by_name(data_wh):
    job = replace(rsft(), model_samples="other")
    assert _data(data_wh, job, BASE, "run-t")[0] == ["o1a"]


def test_dpo_data_pairs_best_passing_with_worst_failing_and_stores_the_pairs(data_wh):
    sample_ids, pair_ids, rows = _data(data_wh, dpo(), BASE, "run-t")
    # p1: (ok, "nope, wrong") and (fine, no); p4: its retry over the bare draw that failed
    # last (s4e), never over the failed retry; p2 all fail and p3 all pass: no pair.
    expected = [
        pair_id("p1", "s1a", "s1e"),
        pair_id("p1", "s1c", "s1d"),
        pair_id("p4", "s4a", "s4e"),
    ]
    assert (sample_ids, pair_ids) == ([], expected)
    assert [(r["chosen"][0]["content"], r["rejected"][0]["content"]) for r in rows] == [
        ("ok", "nope, wrong"),
        ("fine", "no"),
        ("right", "flipped"),
    ]
    assert rows[0]["prompt"] == [{"role": "user", "content": "question p1?"}]
    stored = data_wh.query(
        "SELECT pair_id, prompt_id, chosen_id, rejected_id, margin, strategy, run_id "
        "FROM pairs ORDER BY prompt_id, chosen_id"
    )
    assert stored == [
        (expected[0], "p1", "s1a", "s1e", 1.0, "pass-fail", "run-t"),
        (expected[1], "p1", "s1c", "s1d", 1.0, "pass-fail", "run-t"),
        (expected[2], "p4", "s4a", "s4e", 1.0, "pass-fail", "run-t"),
    ]
    # The same job again writes no second copy of its pairs.
    assert _data(data_wh, dpo(), BASE, "run-u")[1] == expected
    assert data_wh.query("SELECT count(*) FROM pairs") == [(3,)]


@pytest.mark.parametrize(
    ("pairs", "expected"),
    [
        (
            {"strategy": "all"},
            [
                ("p1", "s1a", "s1e"),
                ("p1", "s1a", "s1d"),
                ("p1", "s1c", "s1e"),
                ("p1", "s1c", "s1d"),
                ("p4", "s4a", "s4e"),
                ("p4", "s4a", "s4b"),
            ],
        ),
        (
            {"strategy": "all", "max_per_prompt": 1},
            [("p1", "s1a", "s1e"), ("p4", "s4a", "s4e")],
        ),
    ],
)
def test_dpo_pair_settings_choose_exact_pairs(data_wh, pairs, expected):
    job = dpo(**pairs)
    _, pair_ids, _ = _data(data_wh, job, BASE, "run-t")
    assert pair_ids == [pair_id(*p, strategy=job.pairs.strategy) for p in expected]
    assert data_wh.query("SELECT count(*) FROM pairs") == [(len(expected),)]


def test_a_margin_no_pair_meets_leaves_no_pairs(data_wh):
    # Every pass/fail margin here is 1.0. (The message then still blames all-pass or
    # all-fail prompts, though p1 and p4 are mixed: only its start is pinned here.)
    with pytest.raises(TrainingError, match=r"^no preference pairs"):
        _data(data_wh, dpo(min_margin=1.5), BASE, "run-t")
    assert data_wh.query("SELECT count(*) FROM pairs") == [(0,)]


@pytest.mark.parametrize(
    ("job", "message"),
    [
        (
            replace(rsft(), suite="none"),
            "no verified train samples of base in suite none; run `distillery sample` and "
            "`distillery verify` first",
        ),
        (
            replace(rsft(), model_samples="nobody"),
            "no verified train samples of nobody in suite s; run `distillery sample` and "
            "`distillery verify` first",
        ),
        (
            replace(rsft(), model_samples="failer"),
            "no passing samples to train on; sample more (--k) or check the verifier",
        ),
        (
            replace(dpo(), model_samples="failer"),
            "no preference pairs: every prompt was all-pass or all-fail",
        ),
    ],
)
def test_no_usable_data_is_a_training_error_before_anything_is_written(data_wh, job, message):
    with pytest.raises(TrainingError) as err:
        _data(data_wh, job, BASE, "run-t")
    assert str(err.value) == message
    assert data_wh.query("SELECT count(*) FROM pairs") == [(0,)]


# ------------------------------------------------------------------ the job around a launcher


class StandIn:
    """A launcher that trains nothing: it returns the model it was given and a fixed result."""

    kind = "rsft"

    def __init__(self, status="completed", reason=None):
        self.status, self.reason = status, reason
        self.rows = None

    def train(self, model, tokenizer, rows, out_dir, progress=None):
        self.model, self.rows = model, rows
        Path(out_dir).mkdir(parents=True)  # what TRL leaves: checkpoints in the work dir
        (Path(out_dir) / "checkpoint").write_text("x")
        if progress:
            progress(1, 1, 0.5, 10.0)
        return TrainResult(self.status, self.reason, 1, 0.1, 10, [(1, 0.5)], {"loss": 0.5})


def job_statuses(wh):
    """Every training_jobs row written, oldest first (the view shows each job's latest)."""
    files = str(wh.root / "tables" / "training_jobs" / "*" / "*.parquet")
    rows = wh.query(f"SELECT status FROM read_parquet('{files}') ORDER BY created_at")
    return [s for (s,) in rows]


def tiny_job(out="tuned"):
    job, config, _ = build_training("rsft", "tiny-random", out, "s", "mdl-base", threads=1)
    return job, config


def test_a_completed_job_records_its_ids_and_registers_the_model(data_wh):
    job, config = tiny_job()
    launcher = StandIn()
    seen = []
    outcome = run_training(data_wh, job, launcher, config, "run-t", lambda *a: seen.append(a))
    ids = ["s1a", "s1c", "s3a", "s3b", "s3c", "s3d", "s4a"]
    assert (outcome.status, outcome.reason, outcome.rows) == ("completed", None, 7)
    assert [r["sample_id"] for r in launcher.rows] == ids
    assert seen == [(1, 1, 0.5, 10.0)]
    tiny = resolve("tiny-random")
    # The view keeps a job's latest row; its first ("running") row is in the files too.
    (job_row,) = data_wh.query(
        "SELECT job_id, status, kind, base_model_id, output_model_id, sample_ids, pair_ids, "
        "metrics FROM training_jobs"
    )
    assert (*job_row[:5], list(job_row[5]), list(job_row[6])) == (
        outcome.job_id,
        "completed",
        "rsft",
        tiny.model_id,
        outcome.model_id,
        ids,
        [],
    )
    assert json.loads(job_row[7])["loss_curve"] == [[1, 0.5]]
    assert job_statuses(data_wh) == ["running", "completed"]
    models = data_wh.query(
        "SELECT name, parent_id, job_id, trained, promoted FROM models WHERE model_id = ?",
        [outcome.model_id],
    )
    assert models == [("tuned", tiny.model_id, outcome.job_id, True, False)]
    # The base is registered too, and the trained weights are a plain model directory.
    assert data_wh.query("SELECT name FROM models WHERE model_id = ?", [tiny.model_id]) == [
        ("tiny-random",)
    ]
    out = data_wh.root / "models" / "tuned"
    assert (out / "config.json").is_file() and (out / "model.safetensors").is_file()
    assert not (out / "trainer").exists()  # the launcher's checkpoints are not kept
    assert [p.name for p in (data_wh.root / "models").iterdir()] == ["tuned"]
    import pyarrow.parquet as pq

    exported = pq.read_table(outcome.export_path).to_pylist()
    assert [r["sample_id"] for r in exported] == ids
    assert outcome.export_path.name == "rsft-train.parquet"


def test_a_failed_launcher_marks_the_job_failed_and_registers_nothing(data_wh):
    job, config = tiny_job()
    outcome = run_training(
        data_wh, job, StandIn("failed", "loss is nan at step 1"), config, "run-t"
    )
    assert (outcome.status, outcome.reason, outcome.model_id) == (
        "failed",
        "loss is nan at step 1",
        None,
    )
    assert data_wh.query("SELECT job_id, status, reason, output_model_id FROM training_jobs") == [
        (outcome.job_id, "failed", "loss is nan at step 1", None)
    ]
    assert job_statuses(data_wh) == ["running", "failed"]
    assert data_wh.query("SELECT name FROM models ORDER BY name") == [
        ("failer",),
        ("other",),
        ("tiny-random",),
    ]
    assert list((data_wh.root / "models").iterdir()) == []  # the work directory is removed


@pytest.mark.parametrize(
    ("change", "env", "message"),
    [
        ({"out": "tiny-random"}, None, "a model named 'tiny-random' exists; pick another --out"),
        ({"kind": "ppo"}, None, "unknown training kind 'ppo'; use rsft or dpo"),
        (
            {},
            "many",
            "DISTILLERY_THREADS must be a positive whole number of torch threads (got 'many'); "
            "set it to e.g. 1, or unset it to measure",
        ),
    ],
)
def test_bad_jobs_fail_before_a_job_row_is_written(data_wh, monkeypatch, change, env, message):
    job, config = tiny_job()
    if env is not None:
        config = replace(config, threads=None)
        monkeypatch.setenv("DISTILLERY_THREADS", env)
    launcher = StandIn()
    with pytest.raises(TrainingError) as err:
        run_training(data_wh, replace(job, **change), launcher, config, "run-t")
    assert str(err.value) == message
    assert launcher.rows is None
    assert data_wh.query("SELECT count(*) FROM training_jobs") == [(0,)]
    assert data_wh.query("SELECT name FROM models ORDER BY name") == [("failer",), ("other",)]
