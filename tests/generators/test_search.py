"""The adaptive search over a scripted backend and judge: which procedure finds what, when a
prompt closes (targets met or budget spent), what each row records, and that a rerun
resumes without drawing anything twice."""

import json
from collections import Counter

import pytest

from distillery.config.base import ConfigError
from distillery.generators.base import Attempt, Completion, SamplingError, SamplingParams
from distillery.generators.contexts import Context, build_contexts
from distillery.generators.model_registry import ResolvedModel
from distillery.generators.sampling import Drawing, PromptRow
from distillery.generators.search import run_search
from distillery.generators.search_config import SearchPolicy
from distillery.tasks.base import TaskPrompt

MODEL = ResolvedModel("mdl-fake", "fake", "fake", "test", None, True)
PROMPTS = [
    PromptRow(pid, "fam", (("user", f"question {pid}"),))
    for pid in ("easy", "ctx", "retry", "never", "exemplar")
]
CONTEXT = Context("t/fam/ctx", "t", "fam", "S", (("q0", "a0"),), ("exemplar",))


def kind(messages):
    roles = [r for r, _ in messages]
    if roles[0] == "system":
        return "prompted"
    return "retry" if "assistant" in roles else "bare"


class Scripted:
    """Text names the prompt, the procedure and the row, so every row is distinct."""

    name = "scripted"

    def __init__(self):
        self.rows = 0

    def generate(self, requests, params, progress=None):
        out = [
            Completion(r.prompt_id, i, f"{r.prompt_id} {kind(r.messages)} {i}", 3, 4, "stop", 0.1)
            for r in requests
            for i in r.indices
        ]
        self.rows += len(out)
        yield out

    def close(self):
        pass


PASSES = {("easy", "bare"), ("ctx", "prompted"), ("retry", "retry")}


def judge_for(wh):
    def judge(ids):
        rows = wh.query(
            "SELECT sample_id, prompt_id, text FROM samples "
            "WHERE sample_id IN (SELECT unnest(?::VARCHAR[]))",
            [list(ids)],
        )
        return {
            sid: Attempt(
                sid, pid, text, (pid, text.split()[1]) in PASSES, "wrong_answer", "no", 4, 0.1
            )
            for sid, pid, text in rows
        }

    return judge


def search(wh, backend, config=None, on_wave=None):
    return run_search(
        Drawing(wh, backend, MODEL, "run-test"),
        PROMPTS,
        SamplingParams(4, seed=7),
        judge_for(wh),
        config or SearchPolicy(wave=4, budget=24, targets=2, retries=1),
        {"fam": CONTEXT},
        on_wave,
    )


def test_each_procedure_finds_its_prompts_and_unsolved_ones_spend_the_budget(wh):
    backend = Scripted()
    waves = []
    s = search(wh, backend, on_wave=lambda *w: waves.append(w))
    assert (s.prompts, s.solved, s.waves) == (5, 3, 5)
    # (wave, open prompts, budget they have left): 5 x 24 at first; then retry (9 spent a
    # wave), never (9) and the exemplar (5) stay open, until retry is solved in wave 2 and
    # never reaches its budget in wave 3.
    assert waves == [
        (1, 5, 120),
        (2, 3, 15 + 15 + 19),
        (3, 2, 6 + 14),
        (4, 1, 9),
        (5, 1, 4),
    ]
    # A wave is 4 bare + 4 prompted draws and a retry of the first failed bare draw.
    # easy/ctx close after one wave (4 passes, no failure to retry); retry finds one
    # answer a wave and needs two; never spends 9 a wave, and its third wave's draws reach
    # the budget (26 >= 24) so nothing is retried; the exemplar is never prompted: 5 a
    # wave, then 4 draws reach 24 in the fifth.
    assert s.spent == 8 + 8 + 18 + 26 + 24 == s.written == backend.rows
    assert s.passes == Counter({"sample": 4, "prompted": 4, "retry": 2})
    assert dict(s.per_family["fam"]) == {"prompts": 5, "solved": 3, "spent": 84}
    rows = wh.query(
        "SELECT prompt_id, procedure, context_id, count(*) FROM samples GROUP BY ALL ORDER BY ALL"
    )
    got = {(pid, strat): (ctx, n) for pid, strat, ctx, n in rows}
    cid = CONTEXT.context_id
    assert got == {
        ("ctx", "prompted"): (cid, 4),
        ("ctx", "sample"): (None, 4),
        ("easy", "prompted"): (cid, 4),
        ("easy", "sample"): (None, 4),
        ("exemplar", "retry"): (None, 4),
        ("exemplar", "sample"): (None, 20),
        ("never", "prompted"): (cid, 12),
        ("never", "retry"): (None, 2),
        ("never", "sample"): (None, 12),
        ("retry", "prompted"): (cid, 8),
        ("retry", "retry"): (None, 2),
        ("retry", "sample"): (None, 8),
    }
    # Each wave's retry follows up that wave's first failed draw: idx = 100 × draw + 1.
    idx = wh.query("SELECT idx FROM samples WHERE prompt_id = 'retry' AND procedure = 'retry'")
    assert sorted(i for (i,) in idx) == [1, 401]


def test_every_failed_draw_can_be_followed_up(wh):
    s = search(wh, Scripted(), SearchPolicy(wave=4, budget=24, targets=2, retry_draws=4))
    # 4 retries a wave: retry closes in one wave (12); never 12, 24; the exemplar 8, 16, 24.
    assert (s.spent, s.waves, s.passes["retry"]) == (8 + 8 + 12 + 24 + 24, 3, 4)


def test_a_rerun_resumes_from_the_warehouse_and_draws_nothing_twice(wh):
    first = search(wh, Scripted())
    again = Scripted()
    second = search(wh, again)
    assert (again.rows, second.written) == (0, 0)
    assert (second.solved, second.spent, second.passes) == (
        first.solved,
        first.spent,
        first.passes,
    )
    assert wh.query("SELECT count(*), count(DISTINCT sample_id) FROM samples")[0] == (84, 84)


def test_bare_sampling_alone_is_best_of_n_with_adaptive_k(wh):
    s = search(wh, Scripted(), SearchPolicy(("sample",), wave=2, budget=6, targets=2))
    # easy closes after 2 draws; the other four draw 2, 4, 6 and stop at the budget.
    assert (s.solved, s.spent, s.waves) == (1, 2 + 4 * 6, 3)
    assert wh.query("SELECT DISTINCT procedure FROM samples") == [("sample",)]


def test_a_prompt_no_procedure_can_draw_closes_instead_of_looping(wh):
    s = search(wh, Scripted(), SearchPolicy(("prompted",), wave=2, budget=6, targets=1))
    # ctx passes at once; easy, retry and never fail prompted draws until 6; the exemplar
    # is never prompted with its own answer, so it is closed with nothing spent.
    assert (s.solved, s.spent, s.waves) == (1, 2 + 3 * 6, 3)
    assert wh.query("SELECT count(*) FROM samples WHERE prompt_id = 'exemplar'") == [(0,)]


@pytest.mark.parametrize(
    "config",
    [
        {"procedures": ("sample", "beam")},
        {"procedures": ("retry",)},
        {"procedures": ()},
        {"budget": 0},
        {"targets": 0},
        {"retries": -1},
        {"retry_draws": 0},
    ],
)
def test_bad_search_settings_say_what_to_do(config):
    with pytest.raises(ConfigError, match="--"):
        SearchPolicy(**config)


def test_contexts_take_train_references_and_the_family_system_prompt(wh):
    prompts = [
        TaskPrompt.make("s", "number", split, f"What is {i} + 1?", spec, reference=str(i + 1))
        for i, split in enumerate(["train", "train", "test", "train", "train"])
        for spec in [{"kind": "answer", "expected": str(i + 1), "match": "numeric"}]
    ]
    wh.write([p.to_record("run-x") for p in prompts])
    (ctx,) = build_contexts(wh, "s", shots=2).values()
    train = sorted((p for p in prompts if p.split == "train"), key=lambda p: p.prompt_id)
    assert ctx.exemplar_ids == tuple(p.prompt_id for p in train[:2])
    assert ctx.shots == tuple((p.messages[-1][1], p.reference) for p in train[:2])
    assert ctx.system is not None and ctx.name == "s/number/system+2shot"
    applied = ctx.apply((("user", "What is 9 + 1?"),))
    assert [r for r, _ in applied] == ["system", "user", "assistant", "user", "assistant", "user"]


def test_a_context_file_replaces_the_built_in_context(wh, tmp_path):
    p = TaskPrompt.make("s", "fam", "train", "Q?", {"kind": "answer", "expected": "1"}, "1")
    wh.write([p.to_record("run-x")])
    f = tmp_path / "ctx.json"
    f.write_text(json.dumps({"fam": {"system": "Be brief.", "shots": [["2+2?", "4"]]}}))
    (ctx,) = build_contexts(wh, "s", context_file=f).values()
    assert (ctx.system, ctx.shots, ctx.exemplar_ids) == ("Be brief.", (("2+2?", "4"),), ())
    f.write_text(json.dumps({"fam": {"shots": [["only a question"]]}}))
    with pytest.raises(SamplingError, match="shots"):
        build_contexts(wh, "s", context_file=f)
