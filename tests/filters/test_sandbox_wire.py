import math
import socket

import pytest

from filters.sandbox_wire import Opaque, WireError, decode, encode, recv, send


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
    send(a, {"value": encode([1, 2])})
    assert recv(b) == {"value": [1, 2]}
    a.sendall(b"\xff\xff\xff\xff")
    with pytest.raises(WireError, match="too large"):
        recv(b)
    a.close()
    with pytest.raises(EOFError):
        recv(b)
