"""Set a warehouse up with the stages' plain functions, in the test's own process.

End-to-end tests run the command under test from its command line (`run_cli`, a Prefect
flow run); the steps that only prepare its input (load prompts, import answers, verify
them, select targets) need no flow run each, and are tested as commands elsewhere
(tests/flows/test_cli.py, test_verify_cli.py, tests/trainers/test_training_tiny.py).
"""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from distillery.curate.select_config import SelectConfig
from distillery.curate.select_stage import select_stage
from distillery.filters.verify_config import VerifyConfig
from distillery.filters.verify_stage import verify_stage
from distillery.generators.sample_stage import import_samples
from distillery.tasks.prompts_stage import prompts_job

QUIET = Console(quiet=True)


def load_prompts(source: Path | str, wh: Path) -> int:
    """`distillery prompts load SOURCE`; returns the prompts written."""
    return prompts_job(str(source), None, wh, QUIET).new


def import_answers(file: Path, model_name: str, wh: Path) -> int:
    """`distillery samples import FILE --model-name NAME`; returns the samples written."""
    written, _ = import_samples(file, model_name, wh)
    return written


def verify(wh: Path, suite: str | None = None, model: str | None = None) -> int:
    """`distillery verify [--suite S] [--model M]`; returns the verdicts written."""
    return verify_stage(VerifyConfig(suite=suite, model=model), wh, QUIET).written


def select_targets(wh: Path, model: str, suite: str | None = None) -> int:
    """`distillery select --model M [--suite S]`; returns the targets selected."""
    report, _ = select_stage(SelectConfig(model=model, suite=suite), wh, QUIET)
    return len(report.selected)
