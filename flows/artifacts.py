"""What each flow run leaves in the Prefect UI: markdown summaries, tables, progress, plots.

Builders here turn the stage summaries the plain functions return into markdown and
table rows (pure functions, tested without Prefect); `publish_*` sends them as artifacts
of the current flow or task run. Keys are stable per stage, so the UI's artifact page
shows the latest version of each and keeps the history.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from distillery.filters import reasons
from distillery.filters.verification import FamilyCounts
from distillery.generators.interrupt import stop_requested
from distillery.generators.sampling import SampleSummary
from distillery.trainers.training_job import JobOutcome
from distillery.warehouse.records import EvalRecord

# Plots are embedded as data URIs: the UI then shows them with no file server behind it.
PLOTS = ("pass_at_k.png", "families.png", "cost.png", "amortization.png")


def md_table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def sample_md(
    model: str, n: int, s: SampleSummary, shards: int, processes: int | None = None
) -> str:
    rate = s.tokens / s.seconds if s.seconds > 0 else 0.0
    where = f" in {processes} process(es)" if processes else ""
    text = (
        f"## Sampling {model}\n\n"
        f"{s.prompts} prompts × n={n} = **{s.prompts * n}** samples: {s.already} already in "
        f"the warehouse, **{s.written}** written by {shards} shard(s){where}; {s.tokens} "
        f"tokens in {s.seconds:.1f}s ({rate:.0f} tok/s).\n\n"
    )
    if s.per_family:
        text += md_table(["family", "new samples"], sorted(s.per_family.items()))
    return text


def verify_rows(per_family: Mapping[str, FamilyCounts]) -> list[dict[str, Any]]:
    """One row per family: verified, passed, pass rate and each reason's count."""
    rows = []
    for fam in sorted(per_family):
        c = per_family[fam]
        row: dict[str, Any] = {
            "family": fam,
            "verified": c.verified,
            "passed": c.passed,
            "pass_rate": round(c.pass_rate, 4),
        }
        row.update({r: c.reasons[r] for r in reasons.ALL if c.reasons.get(r)})
        rows.append(row)
    return rows


def verify_md(
    selected: int,
    already: int,
    written: int,
    faults: int,
    seconds: float,
    per_family: Mapping[str, FamilyCounts],
) -> str:
    text = (
        f"## Verification\n\n{selected + already} samples: {already} already verified, "
        f"**{written}** verdicts written in {seconds:.1f}s"
        + (f", {faults} sandbox/judge faults left for a rerun" if faults else "")
        + ".\n\n"
    )
    rows = verify_rows(per_family)
    if rows:
        text += md_table(
            ["family", "verified", "pass rate", "reasons"],
            (
                (
                    r["family"],
                    r["verified"],
                    f"{r['pass_rate']:.1%}",
                    ", ".join(f"{k} {v}" for k, v in r.items() if k in reasons.ALL),
                )
                for r in rows
            ),
        )
    return text


def pairs_md(
    prompts: int, pairs: int, new: int, all_pass: int, all_fail: int, no_contrast: int
) -> str:
    return (
        f"## Preference pairs\n\n{prompts} prompts: **{pairs}** pairs ({new} new); "
        f"{all_pass} all-pass and {all_fail} all-fail prompts gave none, {no_contrast} had "
        "no pair past the margin or with distinct texts.\n"
    )


def selection_md(
    selection_id: str,
    prompts: int,
    selected: int,
    without_pass: int,
    duplicates: int,
    capped: int,
    per_family: dict[str, int],
) -> str:
    families = "".join(f"| {f} | {n} |\n" for f, n in sorted(per_family.items()))
    return (
        f"## RSFT selection\n\n{prompts} prompts: **{selected}** targets "
        f"(selection `{selection_id}`); {without_pass} prompts had no passing sample, "
        f"{duplicates} duplicates dropped, {capped} over the caps.\n\n"
        "| family | targets |\n|---|---|\n" + families
    )


def training_md(kind: str, out: str, outcome: JobOutcome) -> str:
    r = outcome.result
    assert r is not None  # a failed job raises before any artifact
    loss_curve = r.loss_curve
    first = loss_curve[0][1] if loss_curve else float("nan")
    last = loss_curve[-1][1] if loss_curve else float("nan")
    text = (
        f"## Training ({kind})\n\n**{out}** ({outcome.model_id or ''}, job {outcome.job_id}): "
        f"{outcome.rows} rows, {r.steps} steps in {r.seconds:.1f}s ({r.tokens_per_s:.0f} "
        f"tok/s), loss {first:.4f} → {last:.4f}.\n\n"
    )
    if loss_curve:
        every = max(1, len(loss_curve) // 10)
        text += md_table(["step", "loss"], ((int(s), f"{v:.4f}") for s, v in loss_curve[::every]))
    return text


def eval_rows(model: str, records: Sequence[EvalRecord]) -> list[dict[str, Any]]:
    """Per-family pass@k rows (plus the overall row) for a table artifact."""
    rows = []
    for r in records:
        families = {
            "all": {
                "prompts": r.prompts,
                "pass_at_1": r.pass_at_1,
                "pass_at_k": r.pass_at_k,
                "ci_low": r.ci_low,
                "ci_high": r.ci_high,
            }
        }
        families.update(json.loads(r.per_family))
        for fam, f in families.items():
            rows.append(
                {
                    "model": model,
                    "strategy": r.strategy,
                    "n": r.n,
                    "k": r.k,
                    "family": fam,
                    "prompts": int(f["prompts"]),
                    "pass@1": round(float(f["pass_at_1"]), 4),
                    "pass@k": round(float(f["pass_at_k"]), 4),
                    "ci95": f"[{float(f['ci_low']):.3f}, {float(f['ci_high']):.3f}]",
                }
            )
    return rows


def eval_md(model: str, records: Sequence[EvalRecord]) -> str:
    if not records:
        return f"## Evaluation of {model}\n\nno evals\n"
    r0 = records[0]
    text = f"## Evaluation of {model} on {r0.suite}/{r0.split}\n\n"
    return text + md_table(
        ["strategy", "k", "prompts", "pass@1", "pass@k", "95% CI", "samples/q", "s/q"],
        (
            (
                r.strategy,
                r.k,
                r.prompts,
                f"{r.pass_at_1:.3f}",
                f"{r.pass_at_k:.3f}",
                f"[{r.ci_low:.3f}, {r.ci_high:.3f}]",
                f"{r.samples_per_query:.1f}",
                f"{r.seconds_per_query:.3f}",
            )
            for r in records
        ),
    )


def promotion_md(
    model: str, promoted: bool, numbers: dict[str, Any], reasons_: Sequence[str]
) -> str:
    verdict = "PROMOTED" if promoted else "REFUSED"
    text = (
        f"## Promotion gate: **{verdict}** {model}\n\nheld-out pass@1 "
        f"{numbers['model_pass_at_1']:.3f} vs parent {numbers['parent_pass_at_1']:.3f} "
        f"({numbers['delta']:+.3f})\n\n"
    )
    if "lower_bound" in numbers:  # decisions made before the paired bootstrap lack it
        pct = f"{100 * numbers['confidence']:g}%"
        text += (
            f"paired Δ over {numbers['prompts']} prompts: {pct} CI "
            f"[{numbers['ci_low']:+.3f}, {numbers['ci_high']:+.3f}], one-sided {pct} "
            f"lower bound {numbers['lower_bound']:+.3f}\n\n"
        )
    return text + "".join(f"- {r}\n" for r in reasons_)


def data_uri(png: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(png.read_bytes()).decode("ascii")


def plots_md(report_dir: Path) -> str:
    present = [p for p in PLOTS if (report_dir / p).is_file()]
    text = f"## Report plots\n\nfrom `{report_dir / 'report.md'}`\n\n"
    return text + "\n\n".join(f"![{p}]({data_uri(report_dir / p)})" for p in present)


# ------------------------------------------------------------------ publishing


def publish_markdown(key: str, markdown: str, description: str | None = None) -> None:
    from prefect.artifacts import create_markdown_artifact

    create_markdown_artifact(markdown, key=key, description=description)


def publish_table(key: str, rows: list[dict[str, Any]], description: str | None = None) -> None:
    from prefect.artifacts import create_table_artifact

    if rows:
        create_table_artifact(rows, key=key, description=description)


def publish_plots(report_dir: Path, key_prefix: str = "report") -> None:
    """The report's pass@k plot as an image artifact, and every plot in one markdown."""
    from prefect.artifacts import create_image_artifact

    main = report_dir / PLOTS[0]
    if main.is_file():
        create_image_artifact(
            data_uri(main),
            key=f"{key_prefix}-plot-pass-at-k",
            description="pass@k before and after, from the report",
        )
    publish_markdown(f"{key_prefix}-plots", plots_md(report_dir), "the report's plots")


class ProgressArtifact:
    """A progress artifact (0–100) updated at most every `every` seconds, and at the end."""

    def __init__(self, key: str, description: str, every: float = 2.0) -> None:
        from prefect.artifacts import create_progress_artifact

        self.id = create_progress_artifact(0.0, key=key, description=description)
        self.every = every
        self._last = 0.0

    @staticmethod
    def attach(artifact_id: Any, every: float = 2.0) -> ProgressArtifact:
        """Updater for an artifact made elsewhere (a shard updating its flow's progress)."""
        obj = ProgressArtifact.__new__(ProgressArtifact)
        obj.id, obj.every, obj._last = artifact_id, every, 0.0
        return obj

    def due(self) -> bool:
        """Whether an update now would be sent (callers skip computing the fraction if not)."""
        return time.monotonic() - self._last >= self.every

    def update(self, fraction: float, force: bool = False) -> None:
        from prefect.artifacts import update_progress_artifact

        if not force and not self.due():
            return
        self._last = time.monotonic()
        update_progress_artifact(self.id, round(100.0 * min(max(fraction, 0.0), 1.0), 1))

    def count(self, done: int, total: int) -> None:
        """`done` of `total` items finished: the stages' progress callbacks (samples
        verified, draws made, training steps) take this. The last item is always sent."""
        # Once stopping (Ctrl-C), no call to a server that may be gone with the terminal's
        # signal; the run ends as Crashed, whatever the bar said.
        if total and not stop_requested():
            self.update(done / total, force=done >= total)
