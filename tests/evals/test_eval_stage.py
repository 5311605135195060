"""`run_eval` in-process: prompts loaded by the prompts stage, a scripted backend whose texts
are known, the real verifiers and a real warehouse, so every count and figure is exact.
(The same stage through the CLI on tiny-random is tests/flows/test_eval_cli.py.)"""

import io
import json
import re

import pytest
from rich.console import Console

from distillery.config.base import ConfigError
from distillery.evals.eval_config import EvalConfig
from distillery.evals.eval_stage import EvalError, print_evals, run_eval
from distillery.generators.base import Completion, SamplingError
from distillery.generators.model_registry import ResolvedModel
from distillery.generators.search import RETRY_INDEX_BASE
from distillery.tasks.prompts_stage import prompts_job
from distillery.warehouse.passk import bootstrap_interval, pass_at_k
from distillery.warehouse.records import EvalRecord

MODEL = ResolvedModel("mdl-fake", "fake", "fake", "test", None, True)
RUN = "run-eval-test"
N = 4
# Held-out question -> (family, c): draw i of it passes iff i < c.
TEST = {"a0": ("alpha", 4), "a1": ("alpha", 1), "b0": ("beta", 0), "b1": ("beta", 2)}
# Validate-and-retry: the follow-up attempt from which a question is answered right.
FIXED_AT = {"b0": 2}
TOKENS = 3  # completion tokens of every draw
ANSWER = {"kind": "answer", "expected": "ok", "strict": True}


class Scripted:
    """Answers "ok" (right) or "no" (wrong) by the script above; records what it was asked."""

    name = "scripted"

    def __init__(self, passing=None):
        self.passing = passing or {q: c for q, (_, c) in TEST.items()}
        self.asked = []  # (question, idx) per completion produced

    def generate(self, requests, params, progress=None):
        out = []
        for r in requests:
            question = r.messages[0][1]
            follow_up = any(role == "assistant" for role, _ in r.messages)
            for i in r.indices:
                self.asked.append((question, i))
                if follow_up:
                    right = i - RETRY_INDEX_BASE >= FIXED_AT.get(question, 99)
                else:
                    right = i < self.passing[question]
                text = "ok" if right else "no"
                out.append(Completion(r.prompt_id, i, text, 5, TOKENS, "stop", 0.01))
        if progress:
            progress(len(out), TOKENS * len(out))
        yield out

    def close(self):
        pass


def load(wh, tmp_path, suite, rows):
    """Write `rows` as a suite file and load it with the prompts stage; question -> prompt_id."""
    f = tmp_path / f"{suite}.jsonl"
    f.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    loaded = prompts_job(str(f), None, wh.root, Console(file=io.StringIO()))
    assert (loaded.suite, loaded.new) == (suite, len(rows))
    return {
        json.loads(msgs)[0]["content"]: pid
        for pid, msgs in wh.query(
            "SELECT prompt_id, messages FROM prompts WHERE suite = ?", [suite]
        )
    }


@pytest.fixture
def ids(wh, tmp_path):
    rows = [
        {"prompt": q, "family": fam, "split": "test", "verifier": ANSWER}
        for q, (fam, _) in TEST.items()
    ]
    # A train prompt: an eval of the test split never draws it.
    rows.append({"prompt": "t0", "family": "alpha", "split": "train", "verifier": ANSWER})
    return load(wh, tmp_path, "evs", rows)


def job(**kw):
    kw = {"model": "fake", "suite": "evs", "n": N, "k": (1, 2, 4), "max_new_tokens": 16} | kw
    return EvalConfig(workers=2, bootstrap=200, **kw)


def count(wh, table, where="true"):
    return wh.query(f"SELECT count(*) FROM {table} WHERE {where}")[0][0]


def ordered(ids):
    """Test questions in the stage's prompt order: by family, then prompt id."""
    return sorted(TEST, key=lambda q: (TEST[q][0], ids[q]))


def test_sample_evals_have_exact_pass_at_k_overall_and_per_family(wh, ids):
    backend = Scripted()
    records = run_eval(wh, job(), MODEL, backend, RUN)

    # n draws of each test prompt, nothing of the train prompt.
    assert sorted(backend.asked) == sorted((q, i) for q in TEST for i in range(N))
    assert count(wh, "samples") == 16
    assert count(wh, "samples", "procedure = 'sample' AND run_id = 'run-eval-test'") == 16
    assert count(wh, "verdicts") == 16
    assert count(wh, "verdicts", "passed") == 4 + 1 + 0 + 2

    # pass@k(4, c, k) for c = 4, 1, 0, 2 (a0, a1, b0, b1):
    # k=1: 1, 1/4, 0, 1/2; k=2: 1, 1/2, 0, 5/6; k=4: 1, 1, 0, 1. (overall, alpha, beta):
    expected = {1: (1.75 / 4, 0.625, 0.25), 2: (7 / 3 / 4, 0.75, 5 / 12), 4: (0.75, 1.0, 0.5)}
    assert [(r.strategy, r.n, r.k, r.prompts) for r in records] == [
        ("sample", 4, 1, 4),
        ("sample", 4, 2, 4),
        ("sample", 4, 4, 4),
    ]
    order = ordered(ids)
    for r in records:
        overall, alpha, beta = expected[r.k]
        assert r.pass_at_1 == pytest.approx(0.4375)
        assert r.pass_at_k == pytest.approx(overall)
        values = [pass_at_k(N, TEST[q][1], r.k) for q in order]
        assert (r.ci_low, r.ci_high) == pytest.approx(bootstrap_interval(values, 200, 0))
        fam = json.loads(r.per_family)
        assert sorted(fam) == ["alpha", "beta"]
        assert fam["alpha"]["prompts"] == fam["beta"]["prompts"] == 2
        assert fam["alpha"]["pass_at_1"] == pytest.approx(0.625)
        assert fam["beta"]["pass_at_1"] == pytest.approx(0.25)
        assert (fam["alpha"]["pass_at_k"], fam["beta"]["pass_at_k"]) == pytest.approx((alpha, beta))
        # A query of k samples costs k draws of 3 tokens each; 16 draws of 3 tokens in all.
        assert (r.samples_per_query, r.tokens_per_query, r.tokens) == (r.k, 3.0 * r.k, 48)
        assert r.seconds > 0
        # The per-prompt outcomes, sorted by prompt id: c of the n draws.
        by_id = sorted(TEST, key=ids.get)
        assert r.prompt_ids == [ids[q] for q in by_id]
        assert r.prompt_families == [TEST[q][0] for q in by_id]
        assert r.passes == [TEST[q][1] for q in by_id]
        assert json.loads(r.params) == {
            "max_new_tokens": 16,
            "seed": 0,
            "temperature": 0.8,
            "top_p": 0.95,
        }
        assert (r.model_id, r.suite, r.split, r.run_id) == ("mdl-fake", "evs", "test", RUN)
    assert len({r.eval_id for r in records}) == 3

    stored = wh.query(
        "SELECT eval_id, strategy, n, k, prompts, pass_at_1, pass_at_k, passes FROM evals "
        "ORDER BY k"
    )
    assert [(s[0], *s[1:5]) for s in stored] == [
        (r.eval_id, r.strategy, r.n, r.k, r.prompts) for r in records
    ]
    assert [s[6] for s in stored] == pytest.approx([expected[k][0] for k in (1, 2, 4)])
    assert [list(s[7]) for s in stored] == [r.passes for r in records]


def test_a_rerun_reuses_draws_and_verdicts_and_writes_no_new_eval_rows(wh, ids):
    first = run_eval(wh, job(), MODEL, Scripted(), RUN)
    again = Scripted()
    second = run_eval(wh, job(), MODEL, again, "run-eval-again")
    assert again.asked == []
    assert [r.eval_id for r in second] == [r.eval_id for r in first]
    assert [(r.pass_at_1, r.pass_at_k) for r in second] == [
        (r.pass_at_1, r.pass_at_k) for r in first
    ]
    assert (count(wh, "samples"), count(wh, "verdicts"), count(wh, "evals")) == (16, 16, 3)


def test_a_larger_n_draws_only_the_missing_indices(wh, ids):
    run_eval(wh, job(), MODEL, Scripted(), RUN)
    more = Scripted()
    records = run_eval(wh, job(n=6, k=(1, 6)), MODEL, more, RUN)
    # Indices 0-3 are in the warehouse; only 4 and 5 of each test prompt are drawn (and fail).
    assert sorted(more.asked) == sorted((q, i) for q in TEST for i in (4, 5))
    assert (count(wh, "samples"), count(wh, "verdicts")) == (24, 24)
    assert [(r.n, r.k) for r in records] == [(6, 1), (6, 6)]
    assert records[0].pass_at_1 == pytest.approx((4 + 1 + 0 + 2) / 24)
    assert records[1].pass_at_k == pytest.approx(3 / 4)  # every prompt with a pass
    assert count(wh, "evals") == 3 + 2


def test_strategies_reuse_the_draws_and_store_their_follow_ups(wh, ids):
    backend = Scripted()
    records = run_eval(
        wh,
        job(k=(1,), strategies=("best_of_n", "majority", "retry"), budget=4, retries=2),
        MODEL,
        backend,
        RUN,
    )
    # best-of-4 and majority-of-4 use the 4 sampled draws, retry the first; only b0 fails
    # its first draw, and its second follow-up is the first right one.
    draws = [(q, i) for q in TEST for i in range(N)]
    retries = [("b0", RETRY_INDEX_BASE + 1), ("b0", RETRY_INDEX_BASE + 2)]
    assert sorted(backend.asked) == sorted(draws + retries)
    assert count(wh, "samples") == 18
    assert wh.query(
        "SELECT prompt_id, idx FROM samples WHERE procedure = 'retry' ORDER BY idx"
    ) == [
        (ids["b0"], 1),
        (ids["b0"], 2),
    ]
    assert count(wh, "verdicts") == 18

    got = {r.strategy: r for r in records}
    assert list(got) == ["sample", "best_of_n", "majority", "retry"]
    assert [(got[s].n, got[s].k, got[s].prompts) for s in got] == [
        (4, 1, 4),
        (4, 4, 4),
        (4, 4, 4),
        (2, 2, 4),
    ]
    by_id = sorted(TEST, key=ids.get)
    solved = {
        # any of 4 draws passes: all but b0
        "best_of_n": {"a0": 1, "a1": 1, "b0": 0, "b1": 1},
        # a1 votes no 3:1; b1 ties 2:2 and the answer seen first ("ok") wins
        "majority": {"a0": 1, "a1": 0, "b0": 0, "b1": 1},
        # b0 is right at its second retry
        "retry": {"a0": 1, "a1": 1, "b0": 1, "b1": 1},
    }
    for name, wins in solved.items():
        r = got[name]
        assert r.passes == [wins[q] for q in by_id], name
        rate = sum(wins.values()) / 4
        assert (r.pass_at_1, r.pass_at_k) == pytest.approx((rate, rate)), name
        fam = json.loads(r.per_family)
        assert fam["alpha"]["pass_at_1"] == pytest.approx((wins["a0"] + wins["a1"]) / 2)
        assert fam["beta"]["pass_at_1"] == pytest.approx((wins["b0"] + wins["b1"]) / 2)
    # What each spent: 4 draws a query for the N-draw strategies; retry 1 + 1 + 3 + 1.
    assert (got["best_of_n"].samples_per_query, got["best_of_n"].tokens_per_query) == (4.0, 12.0)
    assert (got["retry"].samples_per_query, got["retry"].tokens_per_query) == (1.5, 4.5)
    assert count(wh, "evals") == 4

    again = Scripted()
    rerun = run_eval(
        wh,
        job(k=(1,), strategies=("best_of_n", "majority", "retry"), budget=4, retries=2),
        MODEL,
        again,
        RUN,
    )
    assert again.asked == []
    assert [r.eval_id for r in rerun] == [r.eval_id for r in records]
    assert (count(wh, "samples"), count(wh, "evals")) == (18, 4)


def test_progress_counts_the_draws_then_each_strategy(wh, ids):
    spec = job(k=(1,), strategies=("best_of_n", "retry"), budget=4, retries=2)
    seen = []
    run_eval(wh, spec, MODEL, Scripted(), RUN, on_progress=lambda d, t: seen.append((d, t)))
    # 4 prompts x (4 draws + best-of-4 + 2 retries); the draws come in one batch.
    assert seen == [(0, 40), (16, 40), (16, 40), (32, 40), (40, 40)]
    seen.clear()
    run_eval(wh, spec, MODEL, Scripted(), RUN, on_progress=lambda d, t: seen.append((d, t)))
    assert seen[0] == (16, 40)  # a rerun: the plan finds every draw in the warehouse


def test_majority_votes_only_on_answer_type_prompts(wh, tmp_path):
    style = {"kind": "style", "forbidden": ["no"]}  # "ok" passes, "no" fails; no single answer
    ids = load(
        wh,
        tmp_path,
        "mix",
        [
            {"prompt": "a0", "family": "alpha", "split": "test", "verifier": ANSWER},
            {"prompt": "g0", "family": "gamma", "split": "test", "verifier": style},
            {"prompt": "g1", "family": "gamma", "split": "train", "verifier": style},
        ],
    )
    backend = Scripted({"a0": 1, "g0": 2, "g1": 2})
    records = run_eval(wh, job(suite="mix", k=(1,), strategies=("majority",)), MODEL, backend, RUN)
    sample, majority = records
    tested = sorted(("a0", "g0"), key=ids.get)
    assert (sample.prompts, sample.passes) == (2, [{"a0": 1, "g0": 2}[q] for q in tested])
    assert json.loads(sample.per_family)["gamma"]["pass_at_1"] == pytest.approx(0.5)
    # The vote covers a0 only: "no" wins 3:1, so it fails.
    assert (majority.strategy, majority.prompts, majority.prompt_ids, majority.passes) == (
        "majority",
        1,
        [ids["a0"]],
        [0],
    )
    assert list(json.loads(majority.per_family)) == ["alpha"]

    # A selection with no answer-type prompt (the train split: g1 only) has no majority row.
    (only,) = run_eval(
        wh, job(suite="mix", split="train", k=(1,), strategies=("majority",)), MODEL, backend, RUN
    )
    assert (only.strategy, only.prompt_ids, only.passes) == ("sample", [ids["g1"]], [2])
    assert count(wh, "evals", "strategy = 'majority'") == 1


def test_the_selection_follows_split_and_per_family(wh, ids):
    backend = Scripted({**{q: c for q, (_, c) in TEST.items()}, "t0": 3})
    (train,) = run_eval(wh, job(split="train", k=(1,)), MODEL, backend, RUN)
    assert sorted(backend.asked) == [("t0", i) for i in range(N)]
    assert (train.split, train.prompts, train.prompt_ids, train.passes) == (
        "train",
        1,
        [ids["t0"]],
        [3],
    )
    assert train.pass_at_1 == pytest.approx(0.75)

    backend = Scripted()
    (one_each,) = run_eval(wh, job(per_family=1, k=(1,)), MODEL, backend, RUN)
    # The first prompt id of each family.
    first = {fam: min(ids[q] for q in TEST if TEST[q][0] == fam) for fam in ("alpha", "beta")}
    assert one_each.prompt_ids == sorted(first.values())
    assert sorted(one_each.prompt_families) == ["alpha", "beta"]
    assert len(backend.asked) == 2 * N


def test_draws_the_verifier_cannot_judge_stop_the_eval(wh, tmp_path, monkeypatch):
    monkeypatch.delenv("DISTILLERY_JUDGE_URL", raising=False)  # an unconfigured judge faults
    load(
        wh,
        tmp_path,
        "judged",
        [
            {
                "prompt": "a0",
                "family": "alpha",
                "split": "test",
                "verifier": {"kind": "judge", "rubric": "r"},
            }
        ],
    )
    with pytest.raises(EvalError, match=r"^4 draw\(s\) have no verdict .*rerun the same command"):
        run_eval(wh, job(suite="judged", k=(1,)), MODEL, Scripted({"a0": 1}), RUN)
    # The draws are kept for the rerun; no verdict and no eval row is.
    assert (count(wh, "samples"), count(wh, "verdicts"), count(wh, "evals")) == (4, 0, 0)


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (
            {"k": (1, 8)},
            "pass@8 needs k between 1 and --n 4; raise --n or pass --k with values from 1 to 4",
        ),
        (
            {"k": (0,)},
            "pass@0 needs k between 1 and --n 4; raise --n or pass --k with values from 1 to 4",
        ),
        ({"k": ()}, "--k needs at least one value, such as 1,4,16"),
        (
            {"strategies": ("beam",)},
            "unknown strategy 'beam'; use any of best_of_n, retry, majority",
        ),
        ({"strategies": ("retry",), "retries": 0}, "--retries must be at least 1 (got 0)"),
        ({"budget": 0}, "--budget must be at least 1 (got 0)"),
        ({"bootstrap": 99}, "--bootstrap must be at least 100 resamples"),
        ({"n": 0, "k": (1,)}, "--n must be at least 1 (got 0)"),
        ({"split": None}, "--split must be train or test"),
    ],
)
def test_bad_input_is_one_line_before_anything_can_run(bad, message):
    """The config refuses it when it is built: before a flow, a model or the warehouse."""
    kw = {"model": "fake", "suite": "evs", "n": N, "k": (1,), "workers": 2} | bad
    with pytest.raises(ConfigError) as err:
        EvalConfig(**kw)
    assert str(err.value) == message


def test_an_unknown_suite_names_the_load_command(wh, ids):
    backend = Scripted()
    with pytest.raises(SamplingError, match=re.escape("run `distillery prompts load nope` first")):
        run_eval(wh, job(suite="nope"), MODEL, backend, RUN)
    assert (backend.asked, count(wh, "samples"), count(wh, "evals")) == ([], 0, 0)


def _figure(strategy: str, k: int) -> EvalRecord:
    fam = {"prompts": 41, "pass_at_1": 0.123, "pass_at_k": 0.456, "ci_low": 0.1, "ci_high": 0.9}
    return EvalRecord(
        eval_id=f"evl-{strategy}-{k}",
        model_id="mdl-x",
        suite="humaneval",
        split="test",
        strategy=strategy,
        n=16,
        k=k,
        prompts=164,
        pass_at_1=0.061,
        pass_at_k=0.317,
        ci_low=0.25,
        ci_high=0.389,
        per_family=json.dumps({"humaneval": fam, "summary": fam}),
        samples_per_query=16.0,
        tokens_per_query=1234.5,
        seconds_per_query=12.345,
        tokens=1000,
        seconds=10.0,
        params="{}",
        run_id="run-x",
    )


def test_the_final_tables_read_whole_at_80_columns():
    console = Console(width=80, record=True, color_system=None)
    records = [_figure("sample", 1), _figure("sample", 16), _figure("best_of_n", 16)]
    print_evals(console, "smollm2-135m-rsft-r1", records)
    text = console.export_text()
    assert "…" not in text
    assert max(len(line) for line in text.splitlines()) <= 80
    for expected in (
        "smollm2-135m-rsft-r1 on humaneval/test",
        "best_of_n k=16",
        "humaneval",
        "summary",
        "0.061",
        "0.317",
        "[0.250, 0.389]",
        "[0.100, 0.900]",
        "1234.5",
        "12.345",
    ):
        assert expected in text, expected
    # One success row per figure and family, one cost row per figure.
    assert text.count("0.317") == 3 and text.count("1234.5") == 3
