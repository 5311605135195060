import json
import math
import socket
import threading
import time

import pytest

from distillery.filters.sandbox.wire import (
    Channel,
    Opaque,
    WireError,
    body,
    decode,
    encode,
    frame,
    parse,
)


@pytest.mark.parametrize(
    "value",
    [
        None,
        True,
        3,
        -(2**70),
        1.5,
        "é",
        [1, [2]],
        (1, "a"),
        {"k": (1, 2), 3: None},
        {1, 2},
        frozenset({"a"}),
        b"\x00\xff",
        1 + 2j,
    ],
)
def test_round_trip_keeps_exact_types(value):
    back = decode(encode(value))
    assert back == value and type(back) is type(value)


def test_special_floats_and_subclasses():
    assert math.isnan(decode(encode(float("nan"))))
    assert decode(encode(float("-inf"))) == float("-inf")

    class Liar(int):
        def __eq__(self, other):
            return True

    back = decode(encode(Liar(3)))
    assert isinstance(back, Opaque) and back != 3 and back != back


@pytest.mark.parametrize("bad", [{"$x": 1}, {"$t": 1}, {"a": 1, "b": 2}, {"$d": [[[], 1]]}])
def test_malformed_values_are_refused(bad):
    with pytest.raises(WireError):
        decode(bad)


def test_frames_over_a_socket_and_size_limit():
    a, b = socket.socketpair()
    Channel(a).send({"value": encode([1, 2])})
    rx = Channel(b)
    assert rx.recv() == {"value": [1, 2]}
    a.sendall(b"\xff\xff\xff\xff")
    with pytest.raises(WireError, match="too large"):
        rx.recv()
    a.close()
    with pytest.raises(EOFError):
        Channel(b).recv()


@pytest.mark.parametrize("deadlines", [False, True])
def test_buffered_reads_split_and_joined_frames(deadlines):
    a, b = socket.socketpair()
    rx = Channel(b, deadlines=deadlines)
    deadline = time.monotonic() + 5 if deadlines else None
    # Two frames in one write: both come out, in order, from one read.
    a.sendall(frame({"n": 1}) + frame({"n": 2}))
    assert rx.recv(deadline) == {"n": 1}
    assert rx.recv(deadline) == {"n": 2}
    # A frame cut inside its header and inside its body is put back together.
    data = frame({"s": "x" * 1000})

    def write_in_parts() -> None:
        for part in (data[:2], data[2:9], data[9:]):
            a.sendall(part)
            time.sleep(0.05)

    writer = threading.Thread(target=write_in_parts)
    writer.start()
    assert rx.recv(deadline) == {"s": "x" * 1000}
    writer.join()
    # A frame that is not a JSON object is refused.
    a.sendall(b"\x00\x00\x00\x03[1]")
    with pytest.raises(WireError, match="not an object"):
        rx.recv(deadline)


def test_deadlines_bound_reads_and_writes():
    a, b = socket.socketpair()
    rx = Channel(b, deadlines=True)
    t = time.monotonic()
    with pytest.raises(TimeoutError):
        rx.recv(t + 0.2)
    assert 0.15 < time.monotonic() - t < 2
    # A peer that never reads: a frame larger than the socket buffers cannot be sent.
    tx = Channel(a, deadlines=True)
    with pytest.raises(TimeoutError):
        tx.send({"s": "x" * (8 * 1024 * 1024)}, time.monotonic() + 0.3)
    # A peer that reads gets all of it.
    c, d = socket.socketpair()
    got: list[dict] = []
    reader = threading.Thread(target=lambda: got.append(Channel(d).recv()))
    reader.start()
    Channel(c, deadlines=True).send({"s": "y" * (4 * 1024 * 1024)}, time.monotonic() + 10)
    reader.join(10)
    assert got == [{"s": "y" * (4 * 1024 * 1024)}]


def test_a_reply_waiting_past_the_deadline_is_read_not_a_timeout():
    # The reading side was late (descheduled, or waiting for the GIL): the peer's reply
    # came in time and is in the socket, so it is the answer.
    a, b = socket.socketpair()
    rx = Channel(b, deadlines=True)
    Channel(a).send({"n": 1})
    assert rx.recv(time.monotonic() - 1.0) == {"n": 1}
    with pytest.raises(TimeoutError):
        rx.recv(time.monotonic() - 1.0)
    # Only what was waiting when it looked: a frame still coming in is a timeout.
    a.sendall(frame({"n": 2})[:-1])
    with pytest.raises(TimeoutError):
        rx.recv(time.monotonic() - 1.0)
    a.sendall(frame({"n": 2})[-1:])
    assert rx.recv(time.monotonic() + 5) == {"n": 2}
    # A peer that is gone, read late, is gone: not a timeout.
    a.close()
    with pytest.raises(EOFError):
        rx.recv(time.monotonic() - 1.0)


@pytest.mark.parametrize(
    "malformed",
    [
        {"$t": 5},  # a tuple that is not a list
        {"$i": "zz"},  # an int that is not digits
        {"$i": "9" * 5000},  # past CPython's 4,300-digit limit
        {"$c": ["a", 1]},  # a complex of strings
        {"$c": [[1], 2]},
        {"$b": "!!!"},  # not hex
        {"$s": [[1, 2]]},  # an unhashable set item
        {"$d": [[[1], 2]]},  # an unhashable key
        {"$d": [[1]]},
        {"$x": 1},
        {"$o": 5},
        {"a": 1, "b": 2},
        json.loads("[" * 70 + "1" + "]" * 70),  # deeper than MAX_DEPTH
    ],
)
def test_every_malformed_value_is_a_wire_error_and_nothing_else(malformed):
    with pytest.raises(WireError):
        decode(malformed)


@pytest.mark.parametrize("tag", ["$s", "$fs", "$d"])
def test_keys_built_to_share_one_hash_are_refused_in_linear_time(tag):
    # Multiples of 2**61 - 1 all hash to 0: 100k of them would take minutes to insert.
    colliding = [k * (2**61 - 1) for k in range(1, 100_001)]
    body = [[encode(k), None] for k in colliding] if tag == "$d" else [encode(k) for k in colliding]
    t0 = time.perf_counter()
    with pytest.raises(WireError, match="share one hash"):
        decode({tag: body})
    assert time.perf_counter() - t0 < 2
    # Honest sets of the same size still decode.
    assert (
        len(
            decode(
                {tag: [[k, None] for k in range(100_000)] if tag == "$d" else list(range(100_000))}
            )
        )
        == 100_000
    )


MESSAGES = [
    {"ready": True},
    {"value": encode([1, -2.5, 'é\n"\\', None, True, float("nan"), -float("inf")])},
    {"value": encode({"k": (1, 2), 3: {4, 5}, "b": b"\x00\xff"})},
    {"raised": "ValueError", "bases": ["ValueError", "Exception"], "detail": "\ud800 lone"},
    {"args": encode([[1e300, 1e-300, 2**60], "x" * 1000]), "kwargs": encode({"n": 1})},
    {"batch": [{"args": encode([i]), "kwargs": encode({})} for i in range(50)]},
]


@pytest.mark.parametrize("message", MESSAGES)
def test_the_built_in_encoder_writes_what_json_dumps_writes(message):
    # The wire encodes with a C encoder built once (no json.dumps per message): its bytes
    # must be json.dumps's with the compact separators, so either side can read them.
    assert body(message) == json.dumps(message, separators=(",", ":")).encode("utf-8")
    back = parse(body(message))
    assert json.dumps(back, sort_keys=True) == json.dumps(json.loads(body(message)), sort_keys=True)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b" {}",
        b"{} ",
        b"{}x",
        b'{"a":1}{"b":2}',
        b"[1]",
        b'"x"',
        b"nul",
        b"\xff",
        b"{" * 100_000,
    ],
)
def test_a_frame_that_is_not_exactly_one_json_object_is_a_wire_error(data):
    with pytest.raises(WireError):
        parse(data)
