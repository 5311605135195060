"""Canned SQL over the table views: outcomes per sample and per prompt, pass@k, flips.

Defined in every connection and in `catalog.duckdb`, after the table views:

- `sample_outcomes`: each sample with its prompt's suite/family/split, its model's name,
  the procedure that drew it (`procedure`: sample, prompted, retry) and its context's name,
  and its latest verdict (passed is NULL while unverified).
- `prompt_outcomes`: per (model, prompt, sampling parameters) the number of verified
  independent draws n and how many passed c. Validate-and-retry follow-ups are not
  independent draws and are left out.
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

PROMPT_OUTCOMES = """
CREATE OR REPLACE VIEW prompt_outcomes AS
SELECT model_id, any_value(model) AS model, prompt_id, suite, family, split,
       temperature, top_p, max_new_tokens,
       count(*) AS n, sum(passed::INT) AS c
FROM sample_outcomes
WHERE procedure = 'sample' AND passed IS NOT NULL
GROUP BY model_id, prompt_id, suite, family, split, temperature, top_p, max_new_tokens
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
