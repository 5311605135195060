"""`distillery report`: the seeds' claim, measured, as markdown with PNG plots.

For a base model p₀ and a trained model p_θ evaluated on the same held-out split:
- pass@k curves of both (with 95 % bootstrap intervals),
- per-family pass@1 of both and pass@k of p₀, and the gap closed per family:
  (pass@1 p_θ − pass@1 p₀) / (pass@k p₀ − pass@1 p₀), k the largest evaluated,
- success against cost (tokens per query) for each inference-time strategy and for p_θ
  at one sample,
- amortization: training cost C (seconds spent sampling and verifying p₀'s training
  draws, plus training) against the per-query saving of answering with one sample of p_θ
  instead of best-of-N on p₀; it is repaid after C / (s_bestofN − s_1) queries,
- paired comparisons: Δ between p_θ at one sample and p₀ (pass@1, pass@k, each strategy)
  over the same prompts, with a paired bootstrap interval (evals/paired.py).

Evals of different n or sampling parameters are never mixed: the report uses the most
recent (n, parameters) with which both models have a pass@1 eval, says which, and leaves
the others out. Strategy evals (whose n is their budget) join by sampling parameters.
Everything is read from the warehouse; only the paired bootstrap is computed here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from distillery.evals.paired import Comparison, ComparisonError, compare, outcomes, read_evals
from distillery.warehouse.records import EvalRecord, ModelRecord
from distillery.warehouse.store import Warehouse

# The paired comparisons' bootstrap: fixed, so a report is reproducible.
PAIRED_RESAMPLES = 2000
PAIRED_SEED = 0
PAIRED_CONFIDENCE = 0.95


class ReportError(ValueError):
    """Nothing to report on, or nothing to draw with; the message says what to do."""


def require_matplotlib() -> None:
    """Raise ReportError unless the `report` extra (matplotlib) is installed."""
    try:
        import matplotlib
    except ImportError:
        raise ReportError(
            "the report's plots need matplotlib: pip install 'distillery[report]'"
        ) from None
    matplotlib.use("Agg")


@dataclass(frozen=True)
class Amortization:
    training_seconds: float  # C: sampling + verifying the training draws + training
    search_seconds_per_query: float  # best-of-N on p₀
    one_sample_seconds_per_query: float  # p_θ at k=1
    strategy: str

    @property
    def break_even_queries(self) -> float | None:
        saving = self.search_seconds_per_query - self.one_sample_seconds_per_query
        return self.training_seconds / saving if saving > 0 else None


def _model(wh: Warehouse, name_or_id: str) -> ModelRecord:
    from distillery.generators.model_store import model_row

    row = model_row(wh, name_or_id)
    if row is None:
        raise ReportError(f"no model {name_or_id!r} in the warehouse")
    return row


def _evals(wh: Warehouse, model_id: str, suite: str, split: str) -> list[EvalRecord]:
    """Every eval of this model on suite/split, oldest first."""
    return read_evals(
        wh,
        "model_id = ? AND suite = ? AND split = ? ORDER BY created_at, eval_id",
        [model_id, suite, split],
    )


@dataclass(frozen=True)
class EvalGroup:
    """The evals the report compares: one n and one set of sampling parameters."""

    n: int
    params: str  # JSON, as in evals.params
    base: list[EvalRecord]  # latest per (strategy, k)
    trained: list[EvalRecord]
    left_out: list[tuple[int, str]]  # other (n, params) of either model's pass@1 evals


def _pass1_groups(evals: list[EvalRecord]) -> dict[tuple[int, str], datetime]:
    """(n, params) of each pass@1 eval, with when its latest one was made."""
    out: dict[tuple[int, str], datetime] = {}
    for r in evals:
        if r.strategy == "sample" and r.k == 1:
            key = (r.n, r.params)
            out[key] = max(out.get(key, r.created_at), r.created_at)
    return out


def _in_group(evals: list[EvalRecord], n: int, params: str) -> list[EvalRecord]:
    out: dict[tuple[str, int], EvalRecord] = {}
    for r in evals:  # oldest first: the latest per (strategy, k) wins
        if r.params == params and (r.strategy != "sample" or r.n == n):
            out[(r.strategy, r.k)] = r
    return sorted(out.values(), key=lambda r: (r.strategy != "sample", r.strategy, r.k))


def pick_group(base_evals: list[EvalRecord], trained_evals: list[EvalRecord]) -> EvalGroup | None:
    """The most recent (n, params) both models have a pass@1 eval for, or None."""
    gb, gt = _pass1_groups(base_evals), _pass1_groups(trained_evals)
    common = set(gb) & set(gt)
    if not common:
        return None
    # A group is as recent as the later of its two models' evals became available.
    n, params = max(common, key=lambda g: (min(gb[g], gt[g]), g[0], g[1]))
    return EvalGroup(
        n=n,
        params=params,
        base=_in_group(base_evals, n, params),
        trained=_in_group(trained_evals, n, params),
        left_out=sorted((set(gb) | set(gt)) - {(n, params)}),
    )


def describe_params(params: str) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(json.loads(params).items()))


def _group_list(groups: dict[tuple[int, str], datetime]) -> str:
    return "; ".join(f"n={n} ({describe_params(p)})" for n, p in sorted(groups)) or "none"


def _paired(
    before: EvalRecord, after: EvalRecord, k_before: int = 1
) -> Comparison | ComparisonError:
    """p_θ at one sample against `before`, over the prompts both evals share."""
    try:
        return compare(
            outcomes(before, k_before),
            outcomes(after, 1),
            PAIRED_RESAMPLES,
            PAIRED_SEED,
            PAIRED_CONFIDENCE,
            common_only=True,
        )
    except ComparisonError as exc:
        return exc


def _pick_models(
    wh: Warehouse, suite: str, split: str, base: str | None, model: str | None
) -> tuple[ModelRecord, ModelRecord]:
    if model is None:
        rows = wh.query(
            "SELECT m.model_id FROM models m JOIN evals e USING (model_id) "
            "WHERE e.suite = ? AND e.split = ? AND m.trained AND m.job_id IS NOT NULL "
            "ORDER BY m.promoted DESC, e.created_at DESC LIMIT 1",
            [suite, split],
        )
        if not rows:
            raise ReportError(
                f"no evaluated trained model on {suite}/{split}; run `distillery eval "
                f"--model NAME --suite {suite} --split {split}` for a trained model first"
            )
        model = rows[0][0]
    trained = _model(wh, model)
    if base is None:
        if trained.parent_id is None:
            raise ReportError(f"{trained.name} has no parent; pass --base NAME")
        base = trained.parent_id
    return _model(wh, base), trained


def training_seconds(wh: Warehouse, trained: ModelRecord) -> float:
    """Seconds it took to make `trained`: its job's training time, plus sampling and
    verifying every train-split draw of the model whose samples it learned from."""
    if trained.job_id is None:
        return 0.0
    rows = wh.query(
        "SELECT metrics, config, base_model_id FROM training_jobs WHERE job_id = ?",
        [trained.job_id],
    )
    if not rows:
        return 0.0
    metrics, config, base_id = rows[0]
    job = json.loads(config).get("job", {})
    source = job.get("model_samples") or base_id
    (spent,) = wh.query(
        "SELECT coalesce(sum(latency_s + coalesce(verify_seconds, 0)), 0) "
        "FROM sample_outcomes WHERE (model_id = ? OR model = ?) AND split = ? "
        "AND (? IS NULL OR suite = ?)",
        [source, source, job.get("split", "train"), job.get("suite"), job.get("suite")],
    )[0]
    return float(json.loads(metrics).get("seconds", 0.0)) + float(spent)


def _plot_passk(base_evals, trained_evals, names, path: Path) -> None:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for evals, name in ((base_evals, names[0]), (trained_evals, names[1])):
        rows = [r for r in evals if r.strategy == "sample"]
        if not rows:
            continue
        ks = [r.k for r in rows]
        ys = [r.pass_at_k for r in rows]
        err = [
            [y - r.ci_low for y, r in zip(ys, rows, strict=True)],
            [r.ci_high - y for y, r in zip(ys, rows, strict=True)],
        ]
        ax.errorbar(ks, ys, yerr=err, marker="o", capsize=3, label=name)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("k (samples per query)")
    ax.set_ylabel("pass@k (unbiased, 95% CI)")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title("pass@k before and after training")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot_families(
    rows: list[tuple[str, float, float, float]], names, kmax: int, path: Path
) -> None:
    import matplotlib.pyplot as plt
    import numpy as np

    fams = [r[0] for r in rows]
    x = np.arange(len(fams))
    fig, ax = plt.subplots(figsize=(max(6, 1.4 * len(fams)), 4))
    w = 0.27
    ax.bar(x - w, [r[1] for r in rows], w, label=f"{names[0]} pass@1")
    ax.bar(x, [r[2] for r in rows], w, label=f"{names[1]} pass@1")
    ax.bar(x + w, [r[3] for r in rows], w, label=f"{names[0]} pass@{kmax}", alpha=0.6)
    ax.set_xticks(x, fams)
    ax.set_ylim(0, 1.02)
    ax.set_ylabel("held-out rate")
    ax.legend(fontsize=8)
    ax.set_title("per family")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot_cost(points: list[tuple[int, str, float, float]], path: Path) -> None:
    import matplotlib.pyplot as plt

    fig = cost_figure(points)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def cost_figure(points: list[tuple[int, str, float, float]]) -> Any:
    """Success against tokens per query; `points` are (model 0 = p₀ or 1 = p_θ, label,
    tokens, success). Each model keeps the colour it has in every other plot (p₀ C0,
    p_θ C1), a search strategy is a triangle, one sample a dot."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    fig, ax = plt.subplots(figsize=(6, 4))
    for who, label, tokens, success in points:
        marker = "o" if label.endswith("k=1") else "^"
        ax.scatter([tokens], [success], s=40, color=f"C{who}", marker=marker)
        ax.annotate(label, (tokens, success), fontsize=7, xytext=(4, 3), textcoords="offset points")
    ax.set_xscale("log")
    # Points within one decade got a label at every minor tick, drawn over each other:
    # labels at 1, 2 and 5 of each decade only, as plain numbers, over a range that
    # leaves the annotations room.
    xs = [p[2] for p in points if p[2] > 0]
    if xs:
        ax.set_xlim(min(xs) / 1.5, max(xs) * 3)
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("tokens per query")
    ax.set_ylabel("success rate")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.set_title("success against cost")
    fig.tight_layout()
    return fig


def _plot_amortization(a: Amortization, names, path: Path) -> None:
    import matplotlib.pyplot as plt
    import numpy as np

    q_end = 2 * (a.break_even_queries or 1000.0)
    q = np.linspace(0, q_end, 200)
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(q, q * a.search_seconds_per_query, label=f"{a.strategy} on {names[0]}")
    ax.plot(
        q,
        a.training_seconds + q * a.one_sample_seconds_per_query,
        label=f"train once, then 1 sample of {names[1]}",
    )
    if a.break_even_queries is not None:
        ax.axvline(a.break_even_queries, color="grey", ls="--", lw=1)
        ax.annotate(
            f"repaid after {a.break_even_queries:,.0f} queries",
            (a.break_even_queries, 0),
            fontsize=8,
            xytext=(4, 10),
            textcoords="offset points",
        )
    ax.set_xlabel("queries")
    ax.set_ylabel("cumulative seconds")
    ax.legend(fontsize=8)
    ax.set_title("amortization")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_report(
    wh: Warehouse,
    out: Path,
    suite: str,
    split: str,
    base: str | None = None,
    model: str | None = None,
) -> Path:
    require_matplotlib()
    p0, pt = _pick_models(wh, suite, split, base, model)
    all_base = _evals(wh, p0.model_id, suite, split)
    all_trained = _evals(wh, pt.model_id, suite, split)
    for m, ev in ((p0, all_base), (pt, all_trained)):
        if not _pass1_groups(ev):
            raise ReportError(
                f"no pass@1 eval of {m.name} on {suite}/{split}; run `distillery eval "
                f"--model {m.name} --suite {suite} --split {split}` first"
            )
    group = pick_group(all_base, all_trained)
    if group is None:
        raise ReportError(
            f"no pass@1 evals of {p0.name} and {pt.name} on {suite}/{split} share n and "
            f"sampling parameters ({p0.name}: {_group_list(_pass1_groups(all_base))}; "
            f"{pt.name}: {_group_list(_pass1_groups(all_trained))}); run `distillery eval` "
            "on both with the same --n and sampling options"
        )
    base_evals, trained_evals = group.base, group.trained
    out.mkdir(parents=True, exist_ok=True)
    names = (p0.name, pt.name)
    plain0 = {r.k: r for r in base_evals if r.strategy == "sample"}
    plaint = {r.k: r for r in trained_evals if r.strategy == "sample"}
    kmax = max(plain0)
    pct = f"{100 * PAIRED_CONFIDENCE:g}%"
    fam0_1 = json.loads(plain0[1].per_family)
    fam0_k = json.loads(plain0[kmax].per_family)
    famt_1 = json.loads(plaint[1].per_family)
    main = _paired(plain0[1], plaint[1])
    comparisons: list[tuple[str, Comparison | ComparisonError]] = [
        (f"{pt.name} pass@1 − {p0.name} pass@1", main),
        (f"{pt.name} pass@1 − {p0.name} pass@{kmax}", _paired(plain0[kmax], plaint[1], kmax)),
    ]
    comparisons += [
        (f"{pt.name} one sample − {p0.name} {r.strategy}({r.k})", _paired(r, plaint[1]))
        for r in base_evals
        if r.strategy != "sample"
    ]
    fam_rows = []
    gap_rows = []
    for fam in sorted(set(fam0_1) | set(famt_1)):
        b1 = fam0_1.get(fam, {}).get("pass_at_1", 0.0)
        bk = fam0_k.get(fam, {}).get("pass_at_k", 0.0)
        t1 = famt_1.get(fam, {}).get("pass_at_1", 0.0)
        fam_rows.append((fam, b1, t1, bk))
        gap = (t1 - b1) / (bk - b1) if bk - b1 > 1e-12 else None
        d = main.families.get(fam) if isinstance(main, Comparison) else None
        delta = "n/a" if d is None else f"{d.delta:+.3f} [{d.ci_low:+.3f}, {d.ci_high:+.3f}]"
        gap_rows.append((fam, b1, bk, t1, gap, delta))
    _plot_passk(base_evals, trained_evals, names, out / "pass_at_k.png")
    _plot_families(fam_rows, names, kmax, out / "families.png")
    points = [(1, f"{names[1]} k=1", plaint[1].tokens_per_query, plaint[1].pass_at_1)]
    points += [(0, f"{names[0]} k=1", plain0[1].tokens_per_query, plain0[1].pass_at_1)]
    for who, ev in enumerate((base_evals, trained_evals)):
        for r in ev:
            if r.strategy != "sample":
                label = f"{names[who]} {r.strategy}({r.k})"
                points.append((who, label, r.tokens_per_query, r.pass_at_1))
    _plot_cost(points, out / "cost.png")
    search = next((r for r in base_evals if r.strategy == "best_of_n"), plain0[kmax])
    amort = Amortization(
        training_seconds=training_seconds(wh, pt),
        search_seconds_per_query=search.seconds_per_query,
        one_sample_seconds_per_query=plaint[1].seconds_per_query,
        strategy=f"{search.strategy if search.strategy != 'sample' else 'best_of_n'}({search.k})",
    )
    _plot_amortization(amort, names, out / "amortization.png")

    lines = [
        f"# distillery report: {pt.name} vs {p0.name} on {suite}/{split}",
        "",
        f"Evals compared: n = {group.n} draws per prompt, sampling {describe_params(group.params)}"
        " (the most recent n and parameters both models were evaluated with; strategies at "
        "these parameters).",
    ]
    if group.left_out:
        lines.append(
            "Left out, never mixed in: pass@1 evals with "
            + "; ".join(f"n = {n} ({describe_params(p)})" for n, p in group.left_out)
            + "."
        )
    lines += [
        "",
        "## pass@k (unbiased estimator, 95% bootstrap CI over prompts)",
        "",
        "| model | k | prompts | pass@k | 95% CI | tokens/query | s/query |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, plain in ((p0.name, plain0), (pt.name, plaint)):
        for k, r in sorted(plain.items()):
            lines.append(
                f"| {name} | {k} | {r.prompts} | {r.pass_at_k:.3f} | "
                f"[{r.ci_low:.3f}, {r.ci_high:.3f}] | {r.tokens_per_query:.1f} | "
                f"{r.seconds_per_query:.3f} |"
            )
    lines += [
        "",
        "![pass@k](pass_at_k.png)",
        "",
        "## Per family and gap closed",
        "",
        f"| family | {p0.name} pass@1 | {p0.name} pass@{kmax} | {pt.name} pass@1 | gap closed "
        f"| Δ pass@1 [{pct} CI, paired] |",
        "|---|---|---|---|---|---|",
    ]
    for fam, b1, bk, t1, gap, delta in gap_rows:
        g = "n/a (no gap)" if gap is None else f"{gap:.2f}"
        lines.append(f"| {fam} | {b1:.3f} | {bk:.3f} | {t1:.3f} | {g} | {delta} |")
    lines += [
        "",
        "![families](families.png)",
        "",
        "## Strategies: success against cost",
        "",
        "| model | strategy | budget | success | 95% CI | samples/query | tokens/query | s/query |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, ev in ((p0.name, base_evals), (pt.name, trained_evals)):
        for r in ev:
            if r.strategy == "sample" and r.k != 1:
                continue
            label = "one sample" if r.strategy == "sample" else r.strategy
            lines.append(
                f"| {name} | {label} | {r.k} | {r.pass_at_1:.3f} | "
                f"[{r.ci_low:.3f}, {r.ci_high:.3f}] | {r.samples_per_query:.2f} | "
                f"{r.tokens_per_query:.1f} | {r.seconds_per_query:.3f} |"
            )
    be = amort.break_even_queries
    lines += [
        "",
        "![cost](cost.png)",
        "",
        "## Paired comparisons",
        "",
        "Per-prompt outcomes of both evals over the prompts they share; the bootstrap "
        f"resamples prompts ({PAIRED_RESAMPLES} times, seed {PAIRED_SEED}), the same ones "
        "for both. A Δ whose interval contains 0 is noise, not a difference.",
        "",
        f"| comparison | prompts | Δ | {pct} CI | one-sided {pct} lower bound |",
        "|---|---|---|---|---|",
    ]
    for label, c in comparisons:
        if isinstance(c, ComparisonError):
            lines.append(f"| {label} | - | n/a: {c} | | |")
            continue
        o = c.overall
        lines.append(
            f"| {label} | {o.prompts} | {o.delta:+.3f} | [{o.ci_low:+.3f}, {o.ci_high:+.3f}] "
            f"| {o.lower_bound:+.3f} |"
        )
    lines += [
        "",
        "## Amortization",
        "",
        f"- training cost C = {amort.training_seconds:.1f} s (sampling and verifying the "
        "training draws, plus training)",
        f"- {amort.strategy} on {p0.name}: {amort.search_seconds_per_query:.3f} s per query",
        f"- one sample of {pt.name}: {amort.one_sample_seconds_per_query:.3f} s per query",
        f"- repaid after **{be:,.0f} queries**"
        if be is not None
        else "- never repaid: one sample of the trained model is not cheaper per query",
        "",
        "![amortization](amortization.png)",
    ]
    decisions = wh.query(
        "SELECT promoted, reasons, numbers FROM promotions WHERE model_id = ? "
        "ORDER BY created_at DESC LIMIT 1",
        [pt.model_id],
    )
    if decisions:
        promoted, reasons, numbers = decisions[0]
        lines += [
            "",
            "## Promotion gate",
            "",
            f"- decision: **{'promoted' if promoted else 'refused'}**",
        ]
        nums = json.loads(numbers)
        if "lower_bound" in nums:  # decisions made before the paired bootstrap lack it
            gate_pct = f"{100 * nums['confidence']:g}%"
            lines.append(
                f"- paired Δ pass@1 {nums['delta']:+.3f} over {nums['prompts']} prompts, "
                f"{gate_pct} CI [{nums['ci_low']:+.3f}, {nums['ci_high']:+.3f}], one-sided "
                f"{gate_pct} lower bound {nums['lower_bound']:+.3f}"
            )
        lines += [f"- {r}" for r in reasons]
    path = out / "report.md"
    tmp = path.with_suffix(".md.tmp")
    tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path
