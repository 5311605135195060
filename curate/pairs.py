"""Preference pairs for DPO: chosen over rejected, per prompt, with a margin.

Pairings: `pass-fail` (a passing sample over a failing one), `best-worst` (the highest
score over the lowest, pass or not), `all` (every passing × failing combination); the
`pairs` table stores it as `pairing`. No pair has two texts that are the same after
normalising; prompts whose samples are all passing or all failing (or all of one score)
yield no pair and are counted.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from distillery.curate.pairs_config import PairConfig
from distillery.curate.selection import Candidate, normalise, scope_filter
from distillery.warehouse.ids import content_id
from distillery.warehouse.records import PairRecord
from distillery.warehouse.store import Warehouse


@dataclass(frozen=True)
class Pair:
    prompt_id: str
    chosen: Candidate
    rejected: Candidate

    @property
    def margin(self) -> float:
        return self.chosen.score - self.rejected.score

    def pair_id(self, pairing: str) -> str:
        return content_id(
            "pair", self.prompt_id, self.chosen.sample_id, self.rejected.sample_id, pairing
        )

    def to_record(self, pairing: str, run_id: str) -> PairRecord:
        return PairRecord(
            pair_id=self.pair_id(pairing),
            prompt_id=self.prompt_id,
            chosen_id=self.chosen.sample_id,
            rejected_id=self.rejected.sample_id,
            margin=self.margin,
            pairing=pairing,
            run_id=run_id,
        )


@dataclass
class PairReport:
    pairs: list[Pair] = field(default_factory=list)
    prompts: int = 0
    all_pass: int = 0
    all_fail: int = 0
    no_contrast: int = 0  # mixed, but every candidate pair was identical or under the margin


def _unique(cands: list[Candidate]) -> list[Candidate]:
    seen: set[str] = set()
    out = []
    for c in sorted(cands, key=lambda c: (-c.score, len(c.text), c.sample_id)):
        key = normalise(c.text)
        if key not in seen:
            seen.add(key)
            out.append(c)
    return out


def _prompt_pairs(cands: list[Candidate], config: PairConfig) -> list[Pair]:
    ranked = _unique(cands)  # best first
    passing = [c for c in ranked if c.passed]
    # Rejected answers are the model's own failures on the bare prompt: a failed prompted
    # draw or retry is not what the policy does unaided, so it teaches nothing to avoid.
    failing = [c for c in ranked if not c.passed and c.procedure == "sample"]
    if config.pairing == "best-worst":
        ranked = [c for c in ranked if c.passed or c.procedure == "sample"]
    if config.pairing == "best-worst":
        options = [(hi, lo) for hi in ranked for lo in reversed(ranked) if hi.score > lo.score]
    elif config.pairing == "pass-fail":
        # Zip best passing with worst failing, so each sample is used at most once.
        options = list(zip(passing, reversed(failing), strict=False))
    else:
        options = [(p, f) for p in passing for f in reversed(failing)]
    pairs: list[Pair] = []
    used: set[tuple[str, str]] = set()
    for chosen, rejected in options:
        if normalise(chosen.text) == normalise(rejected.text):
            continue
        if chosen.score - rejected.score < config.min_margin:
            continue
        key = (chosen.sample_id, rejected.sample_id)
        if key in used:
            continue
        used.add(key)
        pairs.append(Pair(chosen.prompt_id, chosen, rejected))
        if len(pairs) == config.pairs_per_prompt:
            break
    return pairs


def build_pairs(candidates: Iterable[Candidate], config: PairConfig) -> PairReport:
    report = PairReport()
    by_prompt: dict[str, list[Candidate]] = defaultdict(list)
    for c in candidates:
        by_prompt[c.prompt_id].append(c)
    report.prompts = len(by_prompt)
    for prompt_id in sorted(by_prompt):
        cands = by_prompt[prompt_id]
        if config.pairing != "best-worst" or len({c.score for c in cands}) == 1:
            if all(c.passed for c in cands):
                report.all_pass += 1
                continue
            if not any(c.passed for c in cands):
                report.all_fail += 1
                continue
        pairs = _prompt_pairs(cands, config)
        if not pairs:
            report.no_contrast += 1
        report.pairs += pairs
    return report


def stored_pairs(
    wh: Warehouse, suite: str | None, model: str | None, split: str | None, pairing: str
) -> list[str]:
    """Ids of the pairs the `pairs` stage stored for `model`'s samples (chosen and rejected
    are both its) on `suite`/`split`, built by `pairing`: what DPO trains on."""
    sql = (
        "SELECT pr.pair_id FROM pairs pr JOIN prompts p USING (prompt_id) "
        "JOIN samples c ON c.sample_id = pr.chosen_id "
        "JOIN samples r ON r.sample_id = pr.rejected_id "
        "LEFT JOIN models mc ON mc.model_id = c.model_id "
        "LEFT JOIN models mr ON mr.model_id = r.model_id WHERE pr.pairing = ?"
    )
    where, params = scope_filter(suite, split, model, [("mc", "c"), ("mr", "r")])
    sql += where + " ORDER BY pr.prompt_id, pr.pair_id"
    params.insert(0, pairing)
    return [pid for (pid,) in wh.query(sql, params)]
