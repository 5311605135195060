import pytest

from distillery.generators.base import SamplingError, SamplingParams


def test_sample_id_ignores_k_but_not_the_rest():
    a = SamplingParams(n=4).sample_id("p", "m", 2)
    assert SamplingParams(n=16).sample_id("p", "m", 2) == a
    assert SamplingParams(n=4, temperature=0.7).sample_id("p", "m", 2) != a
    assert SamplingParams(n=4, seed=1).sample_id("p", "m", 2) != a
    assert SamplingParams(n=4).sample_id("p", "m", 3) != a


def test_row_seed_is_stable_and_fits_63_bits():
    s = SamplingParams(n=1).row_seed("p", 0)
    assert s == SamplingParams(n=9).row_seed("p", 0)
    assert 0 <= s < 2**63 and s != SamplingParams(n=1).row_seed("p", 1)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n": 0}, "--n must be at least 1"),
        ({"n": 1, "temperature": -1}, "--temperature must be >= 0"),
        ({"n": 1, "top_p": 0}, "--top-p must be in"),
        ({"n": 1, "max_new_tokens": 0}, "--max-new-tokens must be at least 1"),
    ],
)
def test_bad_params_are_refused(kwargs, message):
    with pytest.raises(SamplingError, match=message):
        SamplingParams(**kwargs)
