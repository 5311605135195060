"""One Prefect flow per stage: load prompts, search, verify, select or pair, train (RSFT or DPO),
evaluate, promote, report; here together for the pipeline (`bake_flow.py`) and `serve`.

Each flow has plain typed parameters (the UI shows them as a form), calls the stage's
plain function, leaves its summary as artifacts, and returns a small JSON-able dict.
Verification, training and evaluation are each one task run of their flow run (`verify`,
`train-rsft`/`train-dpo`, `eval`), with a progress artifact the stage updates as samples
are verified, steps logged or draws made; they parallelise inside (sandbox workers, the
trainer, batched decoding), and a rerun skips what the warehouse already holds. Sampling
is sharded; see `sample_flow.py`.

Each flow lives in its own module (`verify_flow.py`, …), and a stage command imports only
its own: Prefect builds a flow's parameter schema as the flow is defined, 10-25 ms per
flow with a config, which a command paid for every flow when they shared one module.
"""

from distillery.flows.eval_flow import eval_flow, eval_task
from distillery.flows.import_flow import import_flow
from distillery.flows.pairs_flow import pairs_flow
from distillery.flows.promote_flow import promote_flow
from distillery.flows.prompts_flow import prompts_flow
from distillery.flows.report_flow import report_flow
from distillery.flows.search_flow import search_flow
from distillery.flows.select_flow import select_flow
from distillery.flows.stage_task import stage_task
from distillery.flows.train_flow import dpo_flow, rsft_flow, train_tasks
from distillery.flows.verify_flow import verify_flow, verify_task

__all__ = [
    "dpo_flow",
    "eval_flow",
    "eval_task",
    "import_flow",
    "pairs_flow",
    "promote_flow",
    "prompts_flow",
    "report_flow",
    "rsft_flow",
    "search_flow",
    "select_flow",
    "stage_task",
    "train_tasks",
    "verify_flow",
    "verify_task",
]
