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


def test_sample_ids_are_the_content_ids_of_their_parts():
    # The hot path builds the canonical JSON itself; it must give the ids it always gave.
    import random
    import string

    from distillery.warehouse.ids import content_id

    rnd = random.Random(0)

    def text(n):
        return "".join(rnd.choice(string.printable + 'éü漢"\\\n') for _ in range(n))

    for _ in range(500):
        p = SamplingParams(
            rnd.randint(1, 9),
            rnd.choice([0.0, 0.7, 0.8, 1.0, 1 / 3]),
            rnd.choice([0.9, 0.95, 1.0]),
            rnd.randint(1, 500),
            rnd.randint(0, 2**40),
        )
        pid, mid, idx, ctx = text(12), text(10), rnd.randint(0, 10**7), rnd.choice([None, text(8)])
        parts = [pid, mid, p.identity(), p.seed, idx] + ([] if ctx is None else [ctx])
        assert p.sample_id(pid, mid, idx, ctx) == content_id("smp", *parts)
    # A known id, fixed: changing how ids are made would orphan every stored sample.
    assert SamplingParams(4).sample_id("prm-1", "mdl-1", 3) == "smp-f9ae11eec87fd18cbe8b2734"
