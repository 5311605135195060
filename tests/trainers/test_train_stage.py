"""The training stage without TRL: `RSFTConfig` / `DPOConfig` hold TRL's arguments, what to
train on and what to call the result, and refuse bad values with one line; `launcher_for`
picks the launcher; the job's data step reads the exact sample ids the select stage stored
(RSFT) or the exact pair ids the pairs stage stored (DPO) in a real warehouse;
`run_training` and `train_stage` record a job around a stand-in launcher on tiny-random
(built in-process in well under a second). TRL itself runs in test_training_tiny.py."""

import dataclasses
import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from rich.console import Console

from distillery.config.base import ConfigError
from distillery.curate.pairs import stored_pairs
from distillery.curate.pairs_config import PairsConfig
from distillery.curate.pairs_stage import pairs_stage
from distillery.curate.select_config import SelectConfig, SelectionConfig
from distillery.curate.select_stage import select_stage
from distillery.filters import reasons
from distillery.filters.verification import VerifyError
from distillery.generators.model_registry import ResolvedModel, resolve
from distillery.trainers import train_stage as train_stage_module
from distillery.trainers.base import TrainResult
from distillery.trainers.dpo_trainer import DPOLauncher
from distillery.trainers.rsft_trainer import RSFTLauncher
from distillery.trainers.train_config import (
    DPO_LR,
    RSFT_LR,
    DPOConfig,
    RSFTConfig,
    TrainArgs,
    TrainData,
)
from distillery.trainers.train_stage import launcher_for, train_stage
from distillery.trainers.training_job import TrainingError, _data, run_training
from distillery.warehouse.ids import canonical_json, content_id
from distillery.warehouse.records import (
    ModelRecord,
    PromptRecord,
    SampleRecord,
    VerdictRecord,
)

# ------------------------------------------------------------------ configs and launchers

TRAIN_ARGS = {
    "learning_rate",
    "num_train_epochs",
    "max_steps",
    "per_device_train_batch_size",
    "gradient_accumulation_steps",
    "max_length",
    "warmup_steps",
    "seed",
    "use_peft",
    "lora_r",
    "lora_alpha",
    "lora_dropout",
    "logging_steps",
    "gradient_checkpointing",
    "threads",
}
TRAIN_DATA = {"base", "out", "suite", "samples_of", "split"}


def names(cls):
    return {f.name for f in dataclasses.fields(cls)}


def test_the_configs_hold_trl_names_the_data_and_their_own_fields():
    assert names(TrainArgs) == TRAIN_ARGS
    assert names(TrainData) == TRAIN_DATA
    assert names(RSFTConfig) == TRAIN_ARGS | TRAIN_DATA | names(SelectionConfig)
    assert names(SelectionConfig) == {"mode", "samples_per_prompt", "samples_per_family"}
    # DPO builds no pairs: how pairs are built is the pairs stage's, not a DPO field.
    assert names(DPOConfig) == TRAIN_ARGS | TRAIN_DATA | {"beta", "loss_type", "pairing"}
    assert issubclass(RSFTConfig, SelectionConfig)  # the config is what `select` takes
    # `kind` is a class constant, not a field: no option, not in the recorded parameters.
    assert (RSFTConfig.kind, RSFTConfig().kind) == ("rsft", "rsft")
    assert (DPOConfig.kind, DPOConfig().kind) == ("dpo", "dpo")
    assert "kind" not in RSFTConfig().as_params() and "kind" not in DPOConfig().as_params()


def test_rsft_defaults():
    config = RSFTConfig()
    assert RSFT_LR == 1e-4
    assert (config.out, config.learning_rate) == ("rsft-model", RSFT_LR)
    assert (config.suite, config.samples_of, config.split) == (None, None, "train")
    assert (config.mode, config.samples_per_prompt, config.samples_per_family) == ("all", 4, None)
    assert (
        config.num_train_epochs,
        config.max_steps,
        config.per_device_train_batch_size,
        config.gradient_accumulation_steps,
        config.max_length,
        config.warmup_steps,
        config.seed,
    ) == (1.0, -1, 8, 1, 512, 0, 0)
    assert (config.use_peft, config.lora_r, config.lora_alpha, config.lora_dropout) == (
        False,
        16,
        32,
        0.0,
    )
    assert (config.logging_steps, config.gradient_checkpointing, config.threads) == (
        1,
        False,
        None,
    )
    # The shared bases keep their own defaults; RSFT overrides the name and the rate only.
    assert (TrainData().out, TrainArgs().learning_rate) == ("trained", 5e-5)
    assert config.base == TrainData().base
    launcher = launcher_for(config)
    assert type(launcher) is RSFTLauncher
    assert (launcher.kind, launcher.config) == ("rsft", config)


def test_dpo_defaults():
    config = DPOConfig()
    assert DPO_LR == 5e-6
    assert (config.out, config.learning_rate) == ("dpo-model", DPO_LR)
    assert (config.beta, config.loss_type, config.pairing) == (0.1, "sigmoid", "pass-fail")
    assert (config.suite, config.samples_of, config.split) == (None, None, "train")
    assert (
        config.num_train_epochs,
        config.max_steps,
        config.per_device_train_batch_size,
        config.max_length,
        config.use_peft,
        config.threads,
    ) == (1.0, -1, 8, 512, False, None)
    launcher = launcher_for(config)
    assert type(launcher) is DPOLauncher
    assert (launcher.kind, launcher.config) == ("dpo", config)


def test_rsft_values_reach_the_launcher_unchanged():
    config = RSFTConfig(
        base="smollm2-135m",
        out="tuned",
        suite="seeds",
        samples_of="teacher",
        split="test",
        mode="best",
        samples_per_prompt=2,
        samples_per_family=3,
        learning_rate=3e-3,
        num_train_epochs=2.0,
        max_steps=5,
        per_device_train_batch_size=2,
        gradient_accumulation_steps=4,
        max_length=64,
        warmup_steps=2,
        seed=7,
        use_peft=True,
        lora_r=8,
        lora_alpha=16,
        lora_dropout=0.1,
        logging_steps=5,
        gradient_checkpointing=True,
        threads=1,
    )
    assert config.as_params() == {
        "base": "smollm2-135m",
        "out": "tuned",
        "suite": "seeds",
        "samples_of": "teacher",
        "split": "test",
        "mode": "best",
        "samples_per_prompt": 2,
        "samples_per_family": 3,
        "learning_rate": 3e-3,
        "num_train_epochs": 2.0,
        "max_steps": 5,
        "per_device_train_batch_size": 2,
        "gradient_accumulation_steps": 4,
        "max_length": 64,
        "warmup_steps": 2,
        "seed": 7,
        "use_peft": True,
        "lora_r": 8,
        "lora_alpha": 16,
        "lora_dropout": 0.1,
        "logging_steps": 5,
        "gradient_checkpointing": True,
        "threads": 1,
    }
    launcher = launcher_for(config)
    assert type(launcher) is RSFTLauncher and launcher.config is config


def test_dpo_values_reach_the_launcher_unchanged():
    config = DPOConfig(
        out="aligned",
        suite="s",
        samples_of="teacher",
        beta=0.2,
        loss_type="ipo",
        pairing="all",
        learning_rate=1e-5,
        use_peft=True,
        max_steps=3,
    )
    assert {k: v for k, v in config.as_params().items() if v != getattr(DPOConfig(), k)} == {
        "out": "aligned",
        "suite": "s",
        "samples_of": "teacher",
        "beta": 0.2,
        "loss_type": "ipo",
        "pairing": "all",
        "learning_rate": 1e-5,
        "use_peft": True,
        "max_steps": 3,
    }
    launcher = launcher_for(config)
    assert type(launcher) is DPOLauncher and launcher.config is config


@pytest.mark.parametrize(
    ("cls", "bad", "message"),
    [
        (RSFTConfig, {"mode": "top"}, "--mode must be one of all, best (got 'top')"),
        (RSFTConfig, {"samples_per_prompt": 0}, "--samples-per-prompt must be at least 1 (got 0)"),
        (RSFTConfig, {"samples_per_family": 0}, "--samples-per-family must be at least 1 (got 0)"),
        (RSFTConfig, {"split": "dev"}, "--split must be one of train, test (got 'dev')"),
        (DPOConfig, {"split": "dev"}, "--split must be one of train, test (got 'dev')"),
        (
            DPOConfig,
            {"pairing": "best"},
            "--pairing must be one of pass-fail, best-worst, all (got 'best')",
        ),
        (DPOConfig, {"beta": 0.0}, "--beta must be > 0 (got 0.0)"),
        (DPOConfig, {"beta": -0.1}, "--beta must be > 0 (got -0.1)"),
        (
            DPOConfig,
            {"loss_type": "hinge"},
            "--loss-type must be one of sigmoid, ipo (got 'hinge')",
        ),
        (RSFTConfig, {"learning_rate": -1e-4}, "--learning-rate must be > 0 (got -0.0001)"),
        # 0 is a value, not "use the default": refused like any other rate <= 0.
        (RSFTConfig, {"learning_rate": 0.0}, "--learning-rate must be > 0 (got 0.0)"),
        (DPOConfig, {"learning_rate": 0.0}, "--learning-rate must be > 0 (got 0.0)"),
        (TrainArgs, {"learning_rate": 0}, "--learning-rate must be > 0 (got 0)"),
        (
            DPOConfig,
            {"per_device_train_batch_size": 0},
            "--per-device-train-batch-size must be at least 1 (got 0)",
        ),
        (
            RSFTConfig,
            {"gradient_accumulation_steps": 0},
            "--gradient-accumulation-steps must be at least 1 (got 0)",
        ),
        (RSFTConfig, {"max_length": 15}, "--max-length must be at least 16 (got 15)"),
        (
            RSFTConfig,
            {"max_steps": 0},
            "train for at least one step: --max-steps > 0 or --num-train-epochs > 0",
        ),
        (
            DPOConfig,
            {"num_train_epochs": 0.0},
            "train for at least one step: --max-steps > 0 or --num-train-epochs > 0",
        ),
        (
            RSFTConfig,
            {"threads": -1},
            "--threads must be 0 (measure) or a positive count (got -1)",
        ),
        (RSFTConfig, {"out": ""}, "--out needs a name for the trained model"),
        (DPOConfig, {"out": ""}, "--out needs a name for the trained model"),
    ],
)
def test_bad_values_are_one_line_config_errors(cls, bad, message):
    with pytest.raises(ConfigError) as err:
        cls(**bad)
    assert str(err.value) == message
    assert isinstance(err.value, ValueError)
    assert err.value.__cause__ is None and "\n" not in message


@pytest.mark.parametrize(
    ("cls", "good"),
    [
        (RSFTConfig, {"max_steps": 1, "num_train_epochs": 0.0}),  # steps override epochs
        (RSFTConfig, {"threads": 0}),  # 0: measure
        (RSFTConfig, {"max_length": 16, "samples_per_family": 1}),
        (DPOConfig, {"split": "test", "pairing": "best-worst", "loss_type": "ipo"}),
    ],
)
def test_edge_values_are_accepted(cls, good):
    config = cls(**good)
    assert {k: getattr(config, k) for k in good} == good


def test_a_dpo_config_takes_no_pair_building_or_selection_fields():
    for field in ("pairs_per_prompt", "min_margin", "mode", "samples_per_prompt"):
        with pytest.raises(TypeError, match=f"unexpected keyword argument '{field}'"):
            DPOConfig(**{field: 1})


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
    ("s5b", "p5", "mdl-base", "bad", "sample", [WRONG]),  # test split
    ("o1a", "p1", "mdl-other", "other ok", "sample", [OK]),  # another model's
    ("o1b", "p1", "mdl-other", "other wrong", "sample", [WRONG]),
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
                procedure=procedure,
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


def rsft(**change):
    return RSFTConfig(**{"out": "out", "suite": "s", **change})


def dpo(**change):
    return DPOConfig(**{"out": "out", "suite": "s", **change})


def pair_id(prompt, chosen, rejected, pairing="pass-fail"):
    return content_id("pair", prompt, chosen, rejected, pairing)


def stored(*pairs, pairing="pass-fail"):
    """The ids of (prompt, chosen, rejected) pairs in stored order: by prompt, then id."""
    return [
        pair_id(*p, pairing=pairing)
        for p in sorted(pairs, key=lambda p: (p[0], pair_id(*p, pairing=pairing)))
    ]


def store_pairs(wh, **config):
    """Run the pairs stage (suite s, the base's train samples unless told otherwise)."""
    _, new = pairs_stage(
        PairsConfig(**{"suite": "s", "model": "mdl-base", **config}), wh.root, Console(quiet=True)
    )
    return new


def store_selection(wh, **config):
    """Run the select stage (suite s, the base's train samples unless told otherwise);
    returns the stored sample ids."""
    _, record = select_stage(
        SelectConfig(**{"suite": "s", "model": "mdl-base", **config}), wh.root, Console(quiet=True)
    )
    return record.sample_ids


def selection_count(wh):
    return wh.query("SELECT count(*) FROM selections")[0][0]


def pair_count(wh):
    return wh.query("SELECT count(*) FROM pairs")[0][0]


# The pairs the pairs stage builds from the base's train samples, per pairing. pass-fail:
# p1 zips its best passing with its worst failing ("OK " repeats "ok"); p4's retry is
# chosen over the bare draw that failed last (s4e), never over the failed retry; p2 all
# fail and p3 all pass: no pair. all / best-worst: every passing x bare failing draw.
PASS_FAIL = [("p1", "s1a", "s1e"), ("p1", "s1c", "s1d"), ("p4", "s4a", "s4e")]
EVERY = [
    ("p1", "s1a", "s1e"),
    ("p1", "s1a", "s1d"),
    ("p1", "s1c", "s1e"),
    ("p1", "s1c", "s1d"),
    ("p4", "s4a", "s4e"),
    ("p4", "s4a", "s4b"),
]


def test_rsft_data_is_every_distinct_passing_train_sample_capped_per_prompt(data_wh):
    stored_ids = store_selection(data_wh)
    sample_ids, pair_ids, rows = _data(data_wh, rsft(samples_of="mdl-base"), BASE)
    assert stored_ids == sample_ids
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
    # Without samples_of the base's own samples (by id) are the ones used.
    assert _data(data_wh, rsft(), BASE)[0] == sample_ids
    assert pair_count(data_wh) == 0
    assert selection_count(data_wh) == 1  # training stored no selection of its own


@pytest.mark.parametrize(
    ("selection", "expected"),
    [
        ({"mode": "best"}, ["s1a", "s3a", "s4a"]),
        ({"samples_per_prompt": 1}, ["s1a", "s3a", "s4a"]),
        ({"samples_per_prompt": 2}, ["s1a", "s1c", "s3a", "s3b", "s4a"]),
        # Round-robin within a family: beta gives one from each prompt before a second.
        ({"samples_per_family": 2}, ["s1a", "s1c", "s3a", "s4a"]),
        ({"samples_per_family": 3}, ["s1a", "s1c", "s3a", "s4a", "s3b"]),
        ({"split": "test"}, ["s5a"]),
        ({"suite": None}, ["s1a", "s1c", "s3a", "s3b", "s3c", "s3d", "s4a"]),
    ],
)
def test_rsft_selection_settings_choose_exact_ids(data_wh, selection, expected):
    assert store_selection(data_wh, **selection) == expected
    sample_ids, _, rows = _data(data_wh, rsft(**selection), BASE)
    assert sample_ids == expected
    assert [r["sample_id"] for r in rows] == expected


def test_samples_of_another_model_by_name_or_id(data_wh):
    assert store_selection(data_wh, model="other") == ["o1a"]
    assert _data(data_wh, rsft(samples_of="other"), BASE)[0] == ["o1a"]
    assert _data(data_wh, rsft(samples_of="mdl-other"), BASE)[0] == ["o1a"]


def test_rsft_reads_only_a_selection_of_its_own_scope_and_settings(data_wh):
    store_selection(data_wh, mode="best")
    store_selection(data_wh, split="test")
    store_selection(data_wh, suite=None, samples_per_prompt=2)
    store_selection(data_wh, model="other")
    assert selection_count(data_wh) == 4
    with pytest.raises(TrainingError) as err:
        _data(data_wh, rsft(), BASE)  # mode all, 4 per prompt, suite s, train: none stored
    assert str(err.value) == (
        "no stored selection of base's train samples in suite s with these settings; run "
        "`distillery select --model base --suite s --split train --mode all "
        "--samples-per-prompt 4` first"
    )
    with pytest.raises(TrainingError) as err:
        _data(data_wh, rsft(suite=None, samples_per_family=2, samples_of="failer"), BASE)
    assert str(err.value) == (
        "no stored selection of failer's train samples in suite any with these settings; run "
        "`distillery select --model failer --split train --mode all --samples-per-prompt 4 "
        "--samples-per-family 2` first"
    )
    assert _data(data_wh, rsft(mode="best"), BASE)[0] == ["s1a", "s3a", "s4a"]
    assert _data(data_wh, rsft(suite=None, samples_per_prompt=2), BASE)[0] == [
        "s1a",
        "s1c",
        "s3a",
        "s3b",
        "s4a",
    ]
    assert selection_count(data_wh) == 4


def test_a_selection_with_no_passing_sample_leaves_rsft_nothing_to_train(data_wh):
    assert store_selection(data_wh, model="failer") == []
    with pytest.raises(TrainingError) as err:
        _data(data_wh, rsft(samples_of="failer"), BASE)
    assert str(err.value) == (
        "no passing samples to train on; sample more (--n) or check the verifier"
    )


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"suite": "none"}, "no verified samples of mdl-base match; run `distillery verify` first"),
        ({"model": "nobody"}, "no verified samples of nobody match; run `distillery verify` first"),
    ],
)
def test_selecting_without_verified_samples_stores_nothing(data_wh, config, message):
    with pytest.raises(VerifyError) as err:
        store_selection(data_wh, **config)
    assert str(err.value) == message
    assert selection_count(data_wh) == 0


def test_rsft_reads_the_latest_selection_of_its_scope(data_wh):
    first = store_selection(data_wh)
    # A new passing sample arrives and is verified; selecting again stores a new selection.
    data_wh.write(
        [
            SampleRecord(
                "s2z",
                "p2",
                "mdl-base",
                "run-y",
                "imported",
                0,
                0,
                0.8,
                0.95,
                16,
                "yes",
                1,
                1,
                "stop",
                0.0,
            ),
            VerdictRecord("s2z", "answer", "1", True, 1.0, reasons.OK, "", 0.0, "run-y"),
        ]
    )
    assert _data(data_wh, rsft(), BASE)[0] == first  # until selected again, the old one
    second = store_selection(data_wh)
    assert second == ["s1a", "s1c", "s2z", "s3a", "s3b", "s3c", "s3d", "s4a"]
    assert _data(data_wh, rsft(), BASE)[0] == second
    # Selecting again with the old result (the sample is judged wrong now) makes the old
    # selection the latest again: one row per selection, its latest copy.
    data_wh.write(
        [
            VerdictRecord(
                "s2z",
                "answer",
                "2",
                False,
                0.0,
                reasons.WRONG_ANSWER,
                "",
                0.0,
                "run-z",
                created_at=datetime.now(UTC) + timedelta(1),
            )
        ]
    )
    assert store_selection(data_wh) == first
    assert _data(data_wh, rsft(), BASE)[0] == first
    assert selection_count(data_wh) == 2


def test_dpo_data_reads_the_stored_pairs_of_its_pairing_and_model(data_wh):
    assert store_pairs(data_wh) == 3
    assert store_pairs(data_wh, pairing="all") == 6
    assert store_pairs(data_wh, model="other") == 1  # p1: "other ok" over "other wrong"
    assert store_pairs(data_wh, split="test") == 1  # p5: "ok" over "bad"
    assert pair_count(data_wh) == 11

    sample_ids, pair_ids, rows = _data(data_wh, dpo(), BASE)
    expected = stored(*PASS_FAIL)
    assert (sample_ids, pair_ids) == ([], expected)
    assert [r["pair_id"] for r in rows] == expected
    texts = {"s1a": "ok", "s1c": "fine", "s1d": "no", "s1e": "nope, wrong", "s4a": "right"}
    texts["s4e"] = "flipped"
    by_id = {pair_id(*p): p for p in PASS_FAIL}
    for row in rows:
        prompt, chosen, rejected = by_id[row["pair_id"]]
        assert row == {
            "pair_id": pair_id(prompt, chosen, rejected),
            "prompt": [{"role": "user", "content": f"question {prompt}?"}],
            "chosen": [{"role": "assistant", "content": texts[chosen]}],
            "rejected": [{"role": "assistant", "content": texts[rejected]}],
        }

    # Another pairing reads its own pairs only; another model, its own; another split, its own.
    assert _data(data_wh, dpo(pairing="all"), BASE)[1] == stored(*EVERY, pairing="all")
    assert _data(data_wh, dpo(samples_of="other"), BASE)[1] == [pair_id("p1", "o1a", "o1b")]
    assert _data(data_wh, dpo(samples_of="mdl-base"), BASE)[1] == expected
    assert _data(data_wh, dpo(split="test"), BASE)[1] == [pair_id("p5", "s5a", "s5b")]
    assert _data(data_wh, dpo(suite=None), BASE)[1] == expected
    # DPO builds and writes no pairs of its own.
    assert pair_count(data_wh) == 11
    assert stored_pairs(data_wh, "s", "mdl-base", "train", "pass-fail") == expected


@pytest.mark.parametrize(
    ("pairs", "expected"),
    [
        ({"pairing": "all"}, EVERY),
        ({"pairing": "all", "pairs_per_prompt": 1}, [("p1", "s1a", "s1e"), ("p4", "s4a", "s4e")]),
        ({"pairing": "best-worst"}, EVERY),
    ],
)
def test_dpo_reads_exactly_the_pairs_the_pairs_settings_stored(data_wh, pairs, expected):
    assert store_pairs(data_wh, **pairs) == len(expected)
    pairing = pairs["pairing"]
    _, pair_ids, rows = _data(data_wh, dpo(pairing=pairing), BASE)
    assert pair_ids == stored(*expected, pairing=pairing)
    assert len(rows) == len(expected)
    assert pair_count(data_wh) == len(expected)


def test_a_pair_of_two_models_samples_is_neither_models(data_wh):
    # The pairs stage over every model's samples pairs base's "fine" with other's "wrong".
    store_pairs(data_wh, model=None)
    mixed = pair_id("p1", "s1c", "o1b")
    assert mixed in [pid for (pid,) in data_wh.query("SELECT pair_id FROM pairs")]
    assert mixed not in _data(data_wh, dpo(), BASE)[1]
    with pytest.raises(TrainingError, match="no stored pass-fail pairs of other's"):
        _data(data_wh, dpo(samples_of="other"), BASE)


def test_pairs_of_another_pairing_are_not_used(data_wh):
    assert store_pairs(data_wh, pairing="all") == 6
    with pytest.raises(TrainingError) as err:
        _data(data_wh, dpo(), BASE)
    assert str(err.value) == (
        "no stored pass-fail pairs of base's train samples in suite s; "
        "run `distillery pairs --pairing pass-fail --model base` first"
    )
    with pytest.raises(TrainingError, match=r"^no stored best-worst pairs of base's"):
        _data(data_wh, dpo(pairing="best-worst"), BASE)
    assert pair_count(data_wh) == 6


def test_a_margin_no_pair_meets_leaves_dpo_nothing_to_read(data_wh):
    # Every pass/fail margin here is 1.0.
    assert store_pairs(data_wh, min_margin=1.5) == 0
    with pytest.raises(TrainingError, match=r"^no stored pass-fail pairs of base's train"):
        _data(data_wh, dpo(), BASE)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (
            rsft(),
            "no stored selection of base's train samples in suite s with these settings; run "
            "`distillery select --model base --suite s --split train --mode all "
            "--samples-per-prompt 4` first",
        ),
        (
            rsft(samples_of="nobody", split="test", mode="best"),
            "no stored selection of nobody's test samples in suite s with these settings; run "
            "`distillery select --model nobody --suite s --split test --mode best "
            "--samples-per-prompt 4` first",
        ),
        (
            dpo(),
            "no stored pass-fail pairs of base's train samples in suite s; "
            "run `distillery pairs --pairing pass-fail --model base` first",
        ),
        (
            dpo(suite=None, pairing="all"),
            "no stored all pairs of base's train samples in suite any; "
            "run `distillery pairs --pairing all --model base` first",
        ),
        (
            dpo(samples_of="failer", split="test"),
            "no stored pass-fail pairs of failer's test samples in suite s; "
            "run `distillery pairs --pairing pass-fail --model failer` first",
        ),
    ],
)
def test_no_usable_data_is_a_training_error_before_anything_is_written(data_wh, config, message):
    with pytest.raises(TrainingError) as err:
        _data(data_wh, config, BASE)
    assert str(err.value) == message
    assert pair_count(data_wh) == 0


def test_dpo_finds_no_pairs_of_a_model_whose_samples_never_paired(data_wh):
    # Pairs are stored, but none of them chose a sample of "failer" or "other".
    assert store_pairs(data_wh) == 3
    for who in ("failer", "other"):
        with pytest.raises(TrainingError) as err:
            _data(data_wh, dpo(samples_of=who), BASE)
        assert str(err.value) == (
            f"no stored pass-fail pairs of {who}'s train samples in suite s; "
            f"run `distillery pairs --pairing pass-fail --model {who}` first"
        )


# ------------------------------------------------------------------ the job around a launcher


class StandIn:
    """A launcher that trains nothing: it returns the model it was given and a fixed result."""

    kind = "stand-in"  # the job's kind comes from its config, not from the launcher

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


def tiny_rsft(**change):
    return RSFTConfig(
        **{"base": "tiny-random", "out": "tuned", "suite": "s", "samples_of": "mdl-base"}
        | {"threads": 1, **change}
    )


def tiny_dpo(**change):
    return DPOConfig(
        **{"base": "tiny-random", "out": "tuned", "suite": "s", "samples_of": "mdl-base"}
        | {"threads": 1, **change}
    )


def job_config(config):
    """What `training_jobs.config` holds: the config's fields without the thread count."""
    return {k: v for k, v in config.as_params().items() if k != "threads"}


def test_a_completed_job_records_its_ids_and_registers_the_model(data_wh):
    store_selection(data_wh)
    config = tiny_rsft()
    launcher = StandIn()
    seen = []
    outcome = run_training(data_wh, config, launcher, "run-t", lambda *a: seen.append(a))
    ids = ["s1a", "s1c", "s3a", "s3b", "s3c", "s3d", "s4a"]
    assert (outcome.status, outcome.reason, outcome.rows) == ("completed", None, 7)
    assert [r["sample_id"] for r in launcher.rows] == ids
    assert seen == [(1, 1, 0.5, 10.0)]
    tiny = resolve("tiny-random")
    # The view keeps a job's latest row; its first ("running") row is in the files too.
    (job_row,) = data_wh.query(
        "SELECT job_id, status, kind, base_model_id, output_model_id, sample_ids, pair_ids, "
        "metrics, config, run_id FROM training_jobs"
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
    recorded = json.loads(job_row[8])
    assert recorded == job_config(config)
    assert "threads" not in recorded and "kind" not in recorded
    assert (recorded["learning_rate"], recorded["mode"], recorded["out"]) == (1e-4, "all", "tuned")
    assert job_row[8] == canonical_json(job_config(config))
    assert job_row[9] == "run-t"
    assert outcome.job_id == content_id(
        "job", "rsft", tiny.model_id, ids, [], canonical_json(job_config(config))
    )
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
    assert outcome.export_path.parent.name == outcome.job_id
    # The trained model's name is taken now: a second job may not overwrite it.
    again = StandIn()
    with pytest.raises(TrainingError) as err:
        run_training(data_wh, config, again, "run-u")
    assert str(err.value) == "a model named 'tuned' exists; pick another --out"
    assert again.rows is None and job_statuses(data_wh) == ["running", "completed"]


def test_a_dpo_job_trains_on_the_stored_pairs_and_records_them(data_wh):
    assert store_pairs(data_wh) == 3
    assert store_pairs(data_wh, pairing="all") == 6
    config = tiny_dpo(out="aligned", beta=0.2)
    launcher = StandIn()
    outcome = run_training(data_wh, config, launcher, "run-t")
    expected = stored(*PASS_FAIL)
    assert (outcome.status, outcome.rows) == ("completed", 3)
    assert [r["pair_id"] for r in launcher.rows] == expected
    ((kind, sample_ids, pair_ids, config_json),) = data_wh.query(
        "SELECT kind, sample_ids, pair_ids, config FROM training_jobs"
    )
    assert (kind, list(sample_ids), list(pair_ids)) == ("dpo", [], expected)
    recorded = json.loads(config_json)
    assert recorded == job_config(config)
    assert (recorded["pairing"], recorded["beta"], recorded["loss_type"]) == (
        "pass-fail",
        0.2,
        "sigmoid",
    )
    assert data_wh.query("SELECT name FROM models WHERE model_id = ?", [outcome.model_id]) == [
        ("aligned",)
    ]
    import pyarrow.parquet as pq

    exported = pq.read_table(outcome.export_path).to_pylist()
    assert [r["pair_id"] for r in exported] == expected
    assert set(exported[0]) == {"pair_id", "prompt", "chosen", "rejected"}
    assert outcome.export_path.name == "dpo-train.parquet"
    assert pair_count(data_wh) == 9  # the job wrote no pairs


def test_a_failed_launcher_marks_the_job_failed_and_registers_nothing(data_wh):
    store_selection(data_wh)
    outcome = run_training(data_wh, tiny_rsft(), StandIn("failed", "loss is nan at step 1"), "r")
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
    ("config", "env", "message"),
    [
        (
            tiny_rsft(out="tiny-random"),
            None,
            "a model named 'tiny-random' exists; pick another --out",
        ),
        (
            tiny_dpo(out="smollm2-135m"),
            None,
            "a model named 'smollm2-135m' exists; pick another --out",
        ),
        (
            tiny_rsft(threads=None),
            "many",
            "DISTILLERY_THREADS must be a positive whole number of torch threads (got 'many'); "
            "set it to e.g. 1, or unset it to measure",
        ),
        (
            tiny_dpo(),
            None,
            "no stored pass-fail pairs of mdl-base's train samples in suite s; "
            "run `distillery pairs --pairing pass-fail --model mdl-base` first",
        ),
        (
            tiny_rsft(samples_of="failer"),
            None,
            "no passing samples to train on; sample more (--n) or check the verifier",
        ),
    ],
)
def test_bad_jobs_fail_before_a_job_row_is_written(data_wh, monkeypatch, config, env, message):
    store_selection(data_wh)
    store_selection(data_wh, model="failer")
    if env is not None:
        monkeypatch.setenv("DISTILLERY_THREADS", env)
    launcher = StandIn()
    with pytest.raises(TrainingError) as err:
        run_training(data_wh, config, launcher, "run-t")
    assert str(err.value) == message
    assert err.value.__cause__ is None
    assert launcher.rows is None
    assert data_wh.query("SELECT count(*) FROM training_jobs") == [(0,)]
    assert data_wh.query("SELECT name FROM models ORDER BY name") == [("failer",), ("other",)]
    assert not (data_wh.root / "exports").exists()


# ------------------------------------------------------------------ the stage


def test_train_stage_records_a_run_and_prints_a_summary(data_wh, monkeypatch):
    launchers = []

    def stand_in(config):
        launchers.append((config, StandIn()))
        return launchers[-1][1]

    monkeypatch.setattr(train_stage_module, "launcher_for", stand_in)
    store_selection(data_wh)
    config = tiny_rsft()
    console = Console(record=True, width=200)
    heard = []
    outcome = train_stage(config, data_wh.root, console, lambda *step: heard.append(step))
    assert [c for c, _ in launchers] == [config]
    assert heard == [(1, 1, 0.5, 10.0)]  # what the launcher reported, for the UI
    assert outcome.status == "completed"
    ((flow, parameters, status, run_id),) = data_wh.query(
        "SELECT flow, parameters, status, run_id FROM runs WHERE flow <> 'select'"
    )
    assert (flow, status) == ("train-rsft", "completed")
    assert json.loads(parameters) == config.as_params()  # the run keeps the thread count
    assert data_wh.query("SELECT run_id FROM training_jobs") == [(run_id,)]
    text = console.export_text()
    assert "rsft on 7 rows: 1 steps in 0.1s (100 tok/s), loss 0.5000 → 0.5000" in text
    assert f"registered tuned ({outcome.model_id}, job {outcome.job_id})" in text


def test_train_stage_turns_a_failed_job_into_a_training_error(data_wh, monkeypatch):
    monkeypatch.setattr(
        train_stage_module, "launcher_for", lambda config: StandIn("failed", "loss is nan")
    )
    store_selection(data_wh)
    with pytest.raises(TrainingError) as err:
        train_stage(tiny_rsft(), data_wh.root, Console(quiet=True))
    ((job_id,),) = data_wh.query("SELECT job_id FROM training_jobs WHERE status = 'failed'")
    assert str(err.value) == f"training job {job_id} failed: loss is nan; no model registered"
    assert data_wh.query("SELECT flow FROM runs ORDER BY created_at") == [
        ("select",),
        ("train-rsft",),
    ]


NO_DATA_SCRIPT = """
import sys
from pathlib import Path
from rich.console import Console
from distillery.trainers.train_config import DPOConfig, RSFTConfig
from distillery.trainers.train_stage import train_stage
from distillery.trainers.training_job import TrainingError
from distillery.warehouse.store import Warehouse
root = Path(sys.argv[1])
Warehouse.open(root)
for config in (RSFTConfig(out="a", suite="s"), DPOConfig(out="b", suite="s")):
    try:
        train_stage(config, root, Console(quiet=True))
    except TrainingError as exc:
        print("ERROR", str(exc).split(";")[0])
print("LOADED", [m for m in ("torch", "transformers", "trl", "datasets") if m in sys.modules])
"""


def test_a_job_without_data_fails_before_torch_or_trl_is_imported(tmp_path):
    """A command that cannot train says so in a second: the launcher is built and the
    warehouse read before the launcher's `train` imports the libraries it trains with."""
    out = subprocess.run(
        [sys.executable, "-c", NO_DATA_SCRIPT, str(tmp_path / "wh")],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.splitlines() == [
        "ERROR no stored selection of smollm2-135m's train samples in suite s with these settings",
        "ERROR no stored pass-fail pairs of smollm2-135m's train samples in suite s",
        "LOADED []",
    ]
