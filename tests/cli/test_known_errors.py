"""The CLI's table of user-fixable errors: every entry names a real exception class, and
an error from a module the command imported prints one line and exits 1."""

import importlib
import subprocess
import sys

import pytest

from distillery.cli import app as cli_app
from distillery.warehouse.store import Warehouse


@pytest.mark.parametrize(("module", "name"), cli_app.KNOWN_ERRORS)
def test_every_known_error_is_an_exception_class(module, name):
    cls = getattr(importlib.import_module(module), name)
    assert isinstance(cls, type) and issubclass(cls, Exception)


def test_a_known_error_is_recognised_only_once_its_module_is_loaded():
    from distillery.warehouse.store import WarehouseError

    assert cli_app._is_known(WarehouseError("x"))
    assert not cli_app._is_known(ValueError("x"))


HEAVY = (
    "distillery.evals.eval_stage",
    "distillery.trainers.training_job",
    "distillery.filters.verification",
    "prefect",
    "torch",
    "transformers",
)
SCRIPT = """
import sys
from distillery.cli.app import main
heavy = sys.argv[2].split(",")
sys.argv = ["distillery", "sql", "--warehouse", sys.argv[1], "SELECT 41 + 1"]
try:
    main()
finally:
    print("LOADED", [m for m in heavy if m in sys.modules])
"""


def test_sql_does_not_import_the_stages(tmp_path):
    """`distillery sql` is a quick command: it loads the warehouse, not the stages."""
    Warehouse.open(tmp_path / "wh")
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path / "wh"), ",".join(HEAVY)],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "42" in out.stdout
    assert "LOADED []" in out.stdout


def test_an_error_line_prints_brackets_as_text(monkeypatch, capsys):
    """A message naming an extra (`distillery[report]`) is text, not rich markup."""
    from distillery.evals.report import ReportError

    def fails() -> None:
        raise ReportError("the report's plots need matplotlib: pip install 'distillery[report]'")

    monkeypatch.setattr(cli_app, "app", lambda **_: fails())
    with pytest.raises(SystemExit) as exit_:
        cli_app.main()
    assert exit_.value.code == 1
    err = " ".join(capsys.readouterr().err.split())
    assert err == "error: the report's plots need matplotlib: pip install 'distillery[report]'"
