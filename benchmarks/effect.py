"""The headline experiment: does baking search into the weights move held-out pass@1?

On the seeds suite's held-out test split (and HumanEval), with the default model p₀:

1. p₀'s pass@1 from n draws per prompt (bare prompt, T = 0.8);
2. the search procedure's success on the same held-out prompts (best-of-N, a prompted
   context and validate-and-retry, with the budget the training data was found with);
3. the search on the train split gives the targets; RSFT trains on the passing answers
   against the bare prompt, DPO on (search pass, p₀'s own bare failure) pairs;
4. each baked model p_θ is evaluated exactly as p₀ was (bare prompt, same n, same
   parameters), and compared with p₀ by a paired bootstrap over the same prompts.

Gap closed per family = (pass@1 p_θ − pass@1 p₀) / (search success − pass@1 p₀).

    .venv/bin/python benchmarks/effect.py --out /tmp/effect

The defaults are the RSFT run recorded in benchmarks/RESULTS.md ("Effect"), which lists
every command run and its figures.

Every figure is a warehouse row under --out; rerunning resumes from it.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from rich.console import Console

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from distillery.curate.pairs_config import PairsConfig
from distillery.curate.pairs_stage import pairs_stage
from distillery.evals.eval_config import EvalConfig
from distillery.evals.eval_stage import eval_stage
from distillery.evals.gap import gap_rows, markdown
from distillery.evals.paired import compare, outcomes
from distillery.generators import model_store
from distillery.generators.search_config import SearchConfig
from distillery.generators.search_stage import search_stage
from distillery.tasks.prompts_stage import prompts_job
from distillery.trainers.train_config import DPOConfig, RSFTConfig
from distillery.trainers.train_stage import train_stage
from distillery.warehouse.records import EvalRecord
from distillery.warehouse.store import Warehouse


def fmt_ci(x: float, lo: float, hi: float) -> str:
    return f"{x:.3f} [{lo:.3f}, {hi:.3f}]"


def sample_eval(records: list[EvalRecord]) -> EvalRecord:
    return next(r for r in records if r.strategy == "sample" and r.k == 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="/tmp/effect")
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--test-per-family", type=int, default=30)
    ap.add_argument("--train-per-family", type=int, default=30)
    ap.add_argument("--n", type=int, default=16)
    ap.add_argument("--max-new-tokens", type=int, default=160)
    ap.add_argument("--budget", type=int, default=16)
    ap.add_argument("--targets", type=int, default=2)
    ap.add_argument("--search", default="sample,prompted,retry")
    ap.add_argument("--methods", default="rsft,dpo")
    ap.add_argument("--tag", default="effect", help="baked models are TAG-rsft, TAG-dpo")
    ap.add_argument("--epochs", type=float, default=3.0)
    ap.add_argument("--dpo-epochs", type=float, default=1.0)
    ap.add_argument("--rsft-lr", type=float, default=2e-4)
    ap.add_argument("--dpo-lr", type=float, default=5e-6)
    ap.add_argument("--per-prompt", type=int, default=2)
    ap.add_argument("--humaneval-n", type=int, default=1, help="0 skips HumanEval")
    ap.add_argument("--humaneval-tokens", type=int, default=384)
    args = ap.parse_args()
    console = Console()
    root = Path(args.out)
    started = time.perf_counter()
    prompts_job("seeds", None, root, console)
    if args.humaneval_n:
        prompts_job("humaneval", None, root, console)
    search = tuple(args.search.split(","))
    common = {"temperature": 0.8, "max_new_tokens": args.max_new_tokens, "seed": 0}

    def evaluate(model: str) -> EvalRecord:
        job = EvalConfig(
            model=model,
            suite="seeds",
            split="test",
            n=args.n,
            k=(1,),
            per_family=args.test_per_family,
            **common,
        )
        return sample_eval(eval_stage(job, root, console))

    def humaneval(model: str) -> EvalRecord | None:
        if not args.humaneval_n:
            return None
        job = EvalConfig(
            model=model,
            suite="humaneval",
            split="test",
            n=args.humaneval_n,
            k=(1,),
            temperature=0.8,
            max_new_tokens=args.humaneval_tokens,
        )
        return sample_eval(eval_stage(job, root, console))

    base = evaluate(args.model)
    held_out = search_stage(
        SearchConfig(
            model=args.model,
            suite="seeds",
            split="test",
            procedures=search,
            budget=args.budget,
            targets=1,
            per_family=args.test_per_family,
            **common,
        ),
        root,
        console,
    )
    found = search_stage(
        SearchConfig(
            model=args.model,
            suite="seeds",
            split="train",
            procedures=search,
            budget=args.budget,
            targets=args.targets,
            per_family=args.train_per_family,
            **common,
        ),
        root,
        console,
    )
    baked: dict[str, EvalRecord] = {}
    train_info: dict[str, str] = {}
    wh = Warehouse.open(root)
    for method in args.methods.split(","):
        name = f"{args.tag}-{method}"
        if model_store.model_row(wh, name) is None:
            data = {"base": args.model, "out": name, "suite": "seeds", "samples_of": args.model}
            config: RSFTConfig | DPOConfig
            if method == "rsft":
                config = RSFTConfig(
                    **data,
                    samples_per_prompt=args.per_prompt,
                    learning_rate=args.rsft_lr,
                    num_train_epochs=args.epochs,
                )
            else:
                pairs = PairsConfig(
                    suite="seeds", model=args.model, pairs_per_prompt=args.per_prompt
                )
                pairs_stage(pairs, root, console)
                config = DPOConfig(
                    **data, learning_rate=args.dpo_lr, num_train_epochs=args.dpo_epochs
                )
            out = train_stage(config, root, console)
            r = out.result
            assert r is not None
            train_info[method] = (
                f"{out.rows} rows, {r.steps} steps, loss {r.loss_curve[0][1]:.3f} → "
                f"{r.loss_curve[-1][1]:.3f}, {r.seconds:.0f} s"
            )
        baked[method] = evaluate(name)
    he = {m: humaneval(m) for m in [args.model, *(f"{args.tag}-{m}" for m in baked)]}

    # ------------------------------------------------------------------ the table
    lines = [
        f"p₀ = {args.model}; held-out seeds test split, {base.prompts} prompts "
        f"(≤ {args.test_per_family} per family), n = {args.n}, T = 0.8, "
        f"{args.max_new_tokens} new tokens; search = {'+'.join(search)}, budget "
        f"{args.budget} completions per prompt.",
        "",
    ]
    solved = {f: (c["solved"], c["prompts"]) for f, c in held_out.per_family.items()}
    for method, rec in baked.items():
        rows = gap_rows(base, rec, solved)
        lines += [
            f"### {method.upper()} ({train_info.get(method, 'trained earlier')})",
            "",
            markdown(rows),
            "",
        ]
    if any(he.values()):
        lines += ["HumanEval (164 problems, pass@1 from n draws, T = 0.8):", ""]
        h0 = he[args.model]
        for m, r in he.items():
            if r is None:
                continue
            extra = ""
            if h0 is not None and r is not h0:
                d = compare(outcomes(h0), outcomes(r)).overall
                extra = f", Δ {d.delta:+.3f} [{d.ci_low:+.3f}, {d.ci_high:+.3f}]"
            lines.append(
                f"- {m}: pass@1 {fmt_ci(r.pass_at_1, r.ci_low, r.ci_high)} (n = {r.n}){extra}"
            )
        lines.append("")
    lines.append(
        f"Train-split search: {found.solved}/{found.prompts} prompts solved, "
        f"{found.spent} completions; passing answers by procedure: "
        + ", ".join(f"{k} {v}" for k, v in sorted(found.passes.items()))
        + f". Wall time {time.perf_counter() - started:.0f} s."
    )
    text = "\n".join(lines)
    (root / "effect.md").write_text(text + "\n")
    console.print(text)


if __name__ == "__main__":
    main()
