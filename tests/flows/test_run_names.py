"""Flow-run names from a run's parameters (no Prefect server: `describe` is plain)."""

from distillery.curate.select_config import SelectConfig
from distillery.evals.eval_config import EvalConfig
from distillery.flows.run_names import describe
from distillery.generators.sample_config import SampleConfig
from distillery.generators.search_config import SearchConfig


def test_a_name_lists_the_values_that_say_what_ran():
    params = {"config": SampleConfig(model="smollm2-135m", suite="seeds", split="train", n=8)}
    fields = ("config.model", "config.suite/config.split", "n=config.n")
    assert describe("sample", params, fields) == "sample smollm2-135m seeds/train n=8"


def test_unset_values_are_left_out_and_lists_are_joined():
    params = {"config": SelectConfig(model="m", suite=None, split=None)}
    assert describe("select", params, ("config.model", "config.suite/config.split")) == "select m"
    search = {"config": SearchConfig(model="m", procedures=("sample", "retry"))}
    assert describe("search", search, ("config.procedures",)) == "search sample,retry"


def test_a_deployment_run_with_the_config_as_a_dict_is_named_alike():
    as_object = {"config": EvalConfig(model="m", suite="s", split="test", n=4, k=(1, 4))}
    as_dict = {"config": {"model": "m", "suite": "s", "split": "test", "n": 4}}
    fields = ("config.model", "config.suite/config.split", "n=config.n")
    assert describe("eval", as_object, fields) == describe("eval", as_dict, fields)
    assert describe("eval", as_dict, fields) == "eval m s/test n=4"
    assert describe("prompts-load", {"source": "seeds", "suite": None}, ("source", "suite")) == (
        "prompts-load seeds"
    )
