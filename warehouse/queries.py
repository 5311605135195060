"""Canned SQL over the table views: outcomes per sample and per prompt, pass@k, flips.

Defined in every connection and in `catalog.duckdb`, after the table views:

- `sample_outcomes`: each sample with its prompt's suite/family/split, its model's name,
  the procedure that drew it (`procedure`: sample, prompted, retry) and its context's name,
  and its latest verdict (passed is NULL while unverified).
- `prompt_outcomes`: per (model, prompt, sampling parameters) the number of verified
  independent draws n and how many passed c. Validate-and-retry follow-ups are not
  independent draws and are left out.
- `raw_samples`, `raw_verdicts` (from `catalog_duckdb`): every copy of every row, for
  aggregates that deduplicate by key themselves.
- `pass_at_k(n, c, k)`: the unbiased estimator, e.g.
  `SELECT family, avg(pass_at_k(n, c, 4)) FROM prompt_outcomes WHERE model = 'x' GROUP BY 1`.
- `flips(a, b)`: per prompt both models answered, whether it went from unsolved under `a`
  to solved under `b` ('gained'), the reverse ('lost'), or neither ('same'). A prompt counts
  as solved when at least half of its verified draws passed.
"""

from __future__ import annotations

from distillery.warehouse.passk import PASS_AT_K_MACRO

SAMPLE_OUTCOMES = """
CREATE OR REPLACE VIEW sample_outcomes AS
SELECT s.sample_id, s.prompt_id, s.model_id, m.name AS model, p.suite, p.family, p.split,
       coalesce(s.procedure, 'sample') AS procedure, s.context_id, ctx.name AS context,
       s.idx, s.seed, s.temperature, s.top_p, s.max_new_tokens, s.completion_tokens,
       s.latency_s, s.text,
       v.passed, v.reason, v.detail, v.seconds AS verify_seconds
FROM samples s
JOIN prompts p USING (prompt_id)
LEFT JOIN models m USING (model_id)
LEFT JOIN contexts ctx ON ctx.context_id = s.context_id
LEFT JOIN (
    SELECT * FROM verdicts
    QUALIFY row_number() OVER (PARTITION BY sample_id ORDER BY created_at DESC) = 1
) v USING (sample_id)
"""

# Aggregated from every copy of every sample and verdict (`raw_*`) rather than through
# `sample_outcomes`: the same rows, with hash aggregates by key instead of the views'
# windows over whole rows (half the CPU at a million samples). A sample's model, prompt,
# parameters and procedure are what its id hashes, so every copy of it has the same ones
# and DISTINCT keeps one; its verdict is the latest of the first copies per verifier
# version, as in `sample_outcomes`.
PROMPT_OUTCOMES = """
CREATE OR REPLACE VIEW prompt_outcomes AS
WITH drawn AS (
    SELECT DISTINCT sample_id, model_id, prompt_id, temperature, top_p, max_new_tokens
    FROM raw_samples WHERE coalesce(procedure, 'sample') = 'sample'
), first_verdicts AS (
    SELECT sample_id, min(created_at) AS first_at, arg_min(passed, created_at) AS passed
    FROM raw_verdicts GROUP BY sample_id, verifier, verifier_version
), latest AS (
    SELECT sample_id, arg_max(passed, first_at) AS passed FROM first_verdicts GROUP BY sample_id
)
SELECT d.model_id, any_value(m.name) AS model, d.prompt_id, p.suite, p.family, p.split,
       d.temperature, d.top_p, d.max_new_tokens,
       count(*) AS n, sum(l.passed::INT) AS c
FROM drawn d
JOIN latest l USING (sample_id)
JOIN prompts p USING (prompt_id)
LEFT JOIN models m USING (model_id)
WHERE l.passed IS NOT NULL
GROUP BY d.model_id, d.prompt_id, p.suite, p.family, p.split,
         d.temperature, d.top_p, d.max_new_tokens
"""

FLIPS = """
CREATE OR REPLACE MACRO flips(a, b) AS TABLE
WITH
  ra AS (SELECT prompt_id, suite, family, split, sum(n) AS n, sum(c) AS c FROM prompt_outcomes
         WHERE model = a OR model_id = a GROUP BY ALL),
  rb AS (SELECT prompt_id, suite, family, split, sum(n) AS n, sum(c) AS c FROM prompt_outcomes
         WHERE model = b OR model_id = b GROUP BY ALL)
SELECT prompt_id, suite, family, split,
       ra.c / ra.n AS pass_rate_a, rb.c / rb.n AS pass_rate_b,
       CASE
         WHEN 2 * ra.c < ra.n AND 2 * rb.c >= rb.n THEN 'gained'
         WHEN 2 * ra.c >= ra.n AND 2 * rb.c < rb.n THEN 'lost'
         ELSE 'same'
       END AS flip
FROM ra JOIN rb USING (prompt_id, suite, family, split)
"""

# In dependency order: each may use the ones before it.
DEFINITIONS: tuple[str, ...] = (PASS_AT_K_MACRO, SAMPLE_OUTCOMES, PROMPT_OUTCOMES, FLIPS)
