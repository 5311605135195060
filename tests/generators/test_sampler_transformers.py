from distillery.generators.base import SampleRequest, SamplingParams
from distillery.generators.model_registry import resolve
from distillery.generators.sampler_transformers import TransformersBackend


def _req(pid: str, text: str, n: int) -> SampleRequest:
    return SampleRequest(pid, (("user", text),), tuple(range(n)))


def test_batches_keep_a_prompts_rows_together_and_sort_by_length():
    be = TransformersBackend(resolve("tiny-random"), dtype="fp32", batch_rows=5)
    reqs = [_req("a", "x" * 30, 3), _req("b", "x", 3), _req("c", "x" * 10, 2)]
    enc = [be.encode(r) for r in reqs]
    assert list(be.batches(reqs, enc)) == [[1, 2], [0]]


def test_generate_returns_every_requested_index_with_counts():
    be = TransformersBackend(resolve("tiny-random"), dtype="fp32", batch_rows=4)
    reqs = [_req("a", "hi", 3), SampleRequest("b", (("user", "yo"),), (2, 5))]
    progress = []
    batches = list(
        be.generate(
            reqs, SamplingParams(n=6, max_new_tokens=8), lambda s, t: progress.append((s, t))
        )
    )
    got = [c for b in batches for c in b]
    assert sorted((c.prompt_id, c.idx) for c in got) == [
        ("a", 0),
        ("a", 1),
        ("a", 2),
        ("b", 2),
        ("b", 5),
    ]
    enc_a = len(be.encode(reqs[0]))
    for c in got:
        assert 0 <= c.completion_tokens <= 8
        assert c.finish_reason == ("length" if c.completion_tokens == 8 else "stop")
        assert c.latency_s >= 0
    assert {c.prompt_tokens for c in got if c.prompt_id == "a"} == {enc_a}
    assert sum(s for s, _ in progress) == 5
    assert sum(t for _, t in progress) == sum(c.completion_tokens for c in got) + sum(
        c.finish_reason == "stop" for c in got
    )
