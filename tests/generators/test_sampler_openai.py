"""The OpenAI-compatible backend against a real HTTP server on loopback."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from distillery.generators.base import SampleRequest, SamplingError, SamplingParams
from distillery.generators.sampler_openai import OpenAIBackend


class FakeServer:
    def __init__(self, fail_first: int = 0, status: int = 503):
        self.lock = threading.Lock()
        self.in_flight = self.max_in_flight = self.calls = 0
        self.fail_first, self.status = fail_first, status
        self.bodies: list[dict] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with server.lock:
                    server.calls += 1
                    call = server.calls
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                    server.bodies.append(body)
                time.sleep(0.02)
                with server.lock:
                    server.in_flight -= 1
                if self.path != "/v1/chat/completions" or call <= server.fail_first:
                    self.send_response(
                        server.status if self.path == "/v1/chat/completions" else 404
                    )
                    self.end_headers()
                    return
                text = f"seed={body['seed']} q={body['messages'][-1]['content']}"
                out = {
                    "choices": [{"message": {"content": text}, "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": 5, "completion_tokens": 3},
                }
                data = json.dumps(out).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = FakeServer(fail_first=2)
    yield s
    s.close()


def test_every_row_once_with_its_own_seed_bounded_and_retried(server):
    be = OpenAIBackend(server.url, "m", concurrency=3, backoff_s=0.01)
    reqs = [SampleRequest(f"p{i}", (("user", f"q{i}"),), tuple(range(4))) for i in range(10)]
    params = SamplingParams(n=4, temperature=0.5, top_p=0.9, max_new_tokens=7, seed=3)
    got = [c for batch in be.generate(reqs, params) for c in batch]
    be.close()
    assert sorted((c.prompt_id, c.idx) for c in got) == sorted(
        (f"p{i}", j) for i in range(10) for j in range(4)
    )
    assert server.calls == 40 + 2  # two 503s were retried
    assert server.max_in_flight <= 3
    for c in got:
        assert c.text == f"seed={params.row_seed(c.prompt_id, c.idx)} q=q{c.prompt_id[1:]}"
        assert (c.prompt_tokens, c.completion_tokens, c.finish_reason) == (5, 3, "stop")
    assert {b["max_tokens"] for b in server.bodies} == {7}
    assert {b["temperature"] for b in server.bodies} == {0.5}


def test_gives_up_with_a_clear_error():
    s = FakeServer(fail_first=10**9)
    try:
        be = OpenAIBackend(s.url, "m", concurrency=1, retries=2, backoff_s=0.0)
        with pytest.raises(SamplingError, match="failed after 3 attempts"):
            list(be.generate([SampleRequest("p", (("user", "q"),), (0,))], SamplingParams(n=1)))
        assert s.calls == 3
    finally:
        s.close()


def test_client_errors_are_not_retried():
    s = FakeServer(fail_first=10**9, status=400)
    try:
        be = OpenAIBackend(s.url, "m", concurrency=1, backoff_s=0.0)
        with pytest.raises(SamplingError, match="HTTP 400"):
            list(be.generate([SampleRequest("p", (("user", "q"),), (0,))], SamplingParams(n=1)))
        assert s.calls == 1
    finally:
        s.close()


def test_base_url_must_be_http():
    with pytest.raises(SamplingError, match="--base-url must start with http"):
        OpenAIBackend("localhost:8000", "m")
