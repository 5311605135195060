"""The command line derived from the stages' configs, in-process (no server, no flow run):
every field is an option with its help, bad values stop before anything runs with one
`error:` line, and the flows' parameters carry the same help and choices for the UI."""

from __future__ import annotations

import dataclasses
import sys

import pytest

from distillery.cli import app as cli
from distillery.config.base import field_help, flag
from distillery.curate.pairs_config import PairsConfig
from distillery.curate.select_config import SelectConfig
from distillery.evals.eval_config import EvalConfig
from distillery.evals.gate_config import PromoteConfig
from distillery.evals.report_config import ReportConfig
from distillery.filters.verify_config import VerifyConfig
from distillery.flows.bake_config import BakeConfig
from distillery.generators.sample_config import SampleConfig
from distillery.generators.search_config import SearchConfig
from distillery.trainers.train_config import DPOConfig, RSFTConfig
from distillery.warehouse.records import ModelRecord

COMMANDS = [
    (["sample"], SampleConfig),
    (["search"], SearchConfig),
    (["verify"], VerifyConfig),
    (["select"], SelectConfig),
    (["pairs"], PairsConfig),
    (["train", "rsft"], RSFTConfig),
    (["train", "dpo"], DPOConfig),
    (["eval"], EvalConfig),
    (["promote"], PromoteConfig),
    (["report"], ReportConfig),
    (["bake"], BakeConfig),
]


def run(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    """`distillery ARGS` in this process: (exit code, stdout, stderr)."""
    monkeypatch.setattr(sys, "argv", ["distillery", *args])
    monkeypatch.setenv("COLUMNS", "100")
    with pytest.raises(SystemExit) as exit_:
        cli.main()
        raise SystemExit(0)
    out = capsys.readouterr()
    return int(exit_.value.code or 0), out.out, out.err


@pytest.mark.parametrize(("command", "config"), COMMANDS)
def test_every_field_is_an_option_with_its_help(monkeypatch, capsys, command, config):
    code, out, _ = run(monkeypatch, capsys, *command, "--help")
    assert code == 0
    text = " ".join(out.split())
    for f in dataclasses.fields(config):
        assert flag(f.name) in out, f.name
        # The help's first words, as the terminal wraps them.
        assert " ".join(field_help(config)[f.name].split()[:3]) in text, f.name
    assert "--warehouse" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["sample", "--n", "0"], "--n must be at least 1 (got 0)"),
        (["sample", "--top-p", "1.5"], "--top-p must be in (0, 1] (got 1.5)"),
        (["sample", "--backend", "openai"], "--backend openai needs --base-url"),
        (["sample", "--shard-prompts", "0"], "--shard-prompts must be at least 1 (got 0)"),
        (["search", "--procedures", "retry"], "--procedures retry follows up bare draws"),
        (["search", "--procedures", "beam"], "--procedures takes any of sample, prompted, retry"),
        (["verify", "--workers", "0"], "--workers must be at least 1 (got 0)"),
        (["pairs", "--pairs-per-prompt", "0"], "--pairs-per-prompt must be at least 1 (got 0)"),
        (["train", "rsft", "--learning-rate", "0"], "--learning-rate must be > 0 (got 0.0)"),
        (["train", "rsft", "--max-steps", "0"], "train for at least one step"),
        (["train", "dpo", "--beta", "0"], "--beta must be > 0 (got 0.0)"),
        (
            ["eval", "--n", "2", "--k", "1,4"],
            "pass@4 needs k between 1 and --n 2; raise --n or pass --k with values from 1 to 2",
        ),
        (["eval", "--k", "one"], "--k takes comma-separated integers (got 'one')"),
        (["eval", "--strategies", "beam"], "unknown strategy 'beam'"),
        (["promote"], "--model is required: the trained model (name or id)"),
        (["promote", "--model", "m", "--confidence", "1"], "--confidence must be in (0.5, 1)"),
        (["bake", "--rounds", "0"], "--rounds must be at least 1 (got 0)"),
        (["bake", "--eval-n", "0"], "--eval-n must be at least 1 (got 0)"),
    ],
)
def test_a_bad_value_is_one_error_line_before_any_flow(
    monkeypatch, capsys, tmp_path, args, message
):
    wh = tmp_path / "wh"
    code, out, err = run(monkeypatch, capsys, *args, "--warehouse", str(wh))
    lines = err.strip().splitlines()
    assert (code, len(lines)) == (1, 1), err
    assert lines[0].startswith("error: ") and message in lines[0], lines[0]
    assert out == "" and not wh.exists()  # no flow ran, nothing was written


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["smaple"], "No such command 'smaple'. Did you mean 'sample', 'samples'?"),
        (["sample", "--n", "abc"], "Invalid value for '--n'"),
        (["sample", "--split", "dev"], "'dev' is not one of 'train', 'test'."),
        (["bake", "--method", "ppo"], "'ppo' is not one of 'rsft', 'dpo'."),
        (["pairs", "--pairing", "coinflip"], "'coinflip' is not one of"),
        (["eval", "--nope"], "No such option: --nope"),
    ],
)
def test_a_usage_error_is_one_error_line_and_exit_2(monkeypatch, capsys, args, message):
    code, _, err = run(monkeypatch, capsys, *args)
    lines = err.strip().splitlines()
    assert (code, len(lines)) == (2, 1), err
    assert lines[0].startswith("error: ") and message in lines[0] and "--help" in lines[0]


def test_the_flows_take_the_configs_and_show_their_help_and_choices():
    """What the Prefect UI's run form is built from: each flow's parameter schema."""
    from distillery.flows.bake_flow import bake_flow
    from distillery.flows.sample_flow import sample_flow
    from distillery.flows.stage_flows import dpo_flow, eval_flow, pairs_flow, verify_flow

    for flow, config in (
        (sample_flow, SampleConfig),
        (verify_flow, VerifyConfig),
        (pairs_flow, PairsConfig),
        (dpo_flow, DPOConfig),
        (eval_flow, EvalConfig),
        (bake_flow, BakeConfig),
    ):
        schema = flow.parameters.model_dump()
        assert set(schema["properties"]) >= {"config", "warehouse"}, flow.name
        fields = schema["definitions"][config.__name__]["properties"]
        helps = field_help(config)
        assert set(fields) == {f.name for f in dataclasses.fields(config)}
        for name, prop in fields.items():
            assert prop["description"] == helps[name], (flow.name, name)
    bake = bake_flow.parameters.model_dump()["definitions"]["BakeConfig"]["properties"]
    assert bake["method"]["enum"] == ["rsft", "dpo"]
    assert bake["backend"]["enum"] == ["transformers", "vllm", "openai"]
    assert bake["n"]["default"] == 8 and bake["num_train_epochs"]["default"] == 3.0


def test_flips_names_an_unknown_model_instead_of_listing_nothing(monkeypatch, capsys, wh):
    wh.write([ModelRecord("mdl-a", "a", "x", "imported", None, None, None, True, False, "r")])
    for args in (["a", "nosuch"], ["nosuch", "a"]):
        code, out, err = run(monkeypatch, capsys, "flips", *args, "--warehouse", str(wh.root))
        assert code == 1 and out == ""
        assert err.strip() == (
            "error: unknown model 'nosuch'; `distillery models list` shows the registered ones"
        )
    code, out, _ = run(monkeypatch, capsys, "flips", "a", "a", "--warehouse", str(wh.root))
    assert code == 0


def _leaf_commands() -> list[list[str]]:
    """Every command a user can type, subcommands included (`models list`, `train rsft`)."""
    import typer.main

    def walk(group, path: list[str]) -> list[list[str]]:
        found = []
        for name, command in sorted(group.commands.items()):
            sub = getattr(command, "commands", None)
            found += walk(command, [*path, name]) if sub else [[*path, name]]
        return found

    return walk(typer.main.get_command(cli.app), [])


@pytest.mark.parametrize("command", _leaf_commands(), ids=" ".join)
def test_every_command_answers_an_unknown_option_in_one_line(monkeypatch, capsys, command):
    code, out, err = run(monkeypatch, capsys, *command, "--no-such-option")
    lines = err.strip().splitlines()
    assert (code, len(lines)) == (2, 1), err
    assert lines[0].startswith("error: No such option: --no-such-option"), lines[0]
    assert f"distillery {' '.join(command)} --help" in lines[0]
    assert out == ""


def test_the_leaf_commands_are_all_there():
    """The list the test above runs over is the whole command line (a new command joins it
    by itself; this says which there are)."""
    assert sorted(" ".join(c) for c in _leaf_commands()) == [
        "bake", "compact", "demo", "doctor", "eval", "flips", "models list", "models pull",
        "pairs", "promote", "prompts load", "report", "sample", "samples import", "search",
        "select", "serve", "server status", "server stop", "sql", "train dpo", "train rsft",
        "verify",
    ]  # fmt: skip
