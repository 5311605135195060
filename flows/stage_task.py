"""How a stage's one task run (verify, train, eval) is declared.

The task runs once in its flow's process and hands its summary straight back: no cache
(the warehouse is the cache) and no stored result (nothing reads it later).
"""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

stage_task = task(cache_policy=NO_CACHE, persist_result=False)
