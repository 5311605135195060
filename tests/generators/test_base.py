import pytest

from distillery.generators.base import SamplingError, SamplingParams


def test_sample_id_ignores_k_but_not_the_rest():
    a = SamplingParams(k=4).sample_id("p", "m", 2)
    assert SamplingParams(k=16).sample_id("p", "m", 2) == a
    assert SamplingParams(k=4, temperature=0.7).sample_id("p", "m", 2) != a
    assert SamplingParams(k=4, seed=1).sample_id("p", "m", 2) != a
    assert SamplingParams(k=4).sample_id("p", "m", 3) != a


def test_row_seed_is_stable_and_fits_63_bits():
    s = SamplingParams(k=1).row_seed("p", 0)
    assert s == SamplingParams(k=9).row_seed("p", 0)
    assert 0 <= s < 2**63 and s != SamplingParams(k=1).row_seed("p", 1)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"k": 0}, "--k must be at least 1"),
        ({"k": 1, "temperature": -1}, "--temperature must be >= 0"),
        ({"k": 1, "top_p": 0}, "--top-p must be in"),
        ({"k": 1, "max_new_tokens": 0}, "--max-new-tokens must be at least 1"),
    ],
)
def test_bad_params_are_refused(kwargs, message):
    with pytest.raises(SamplingError, match=message):
        SamplingParams(**kwargs)
