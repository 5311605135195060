"""The sandbox's wire format: length-prefixed frames of tagged JSON, plain values only.

The parent decodes what a candidate process sends into builtins only (no pickle, no
classes of the candidate's), so an object whose `__eq__` always says True, or an `int`
subclass that lies, cannot cross: at most the plain value it claims to be arrives.
"""

from __future__ import annotations

import base64
import json
import math
import socket
import struct
from typing import Any

MAX_FRAME = 16 * 1024 * 1024
MAX_DEPTH = 64
_HEADER = struct.Struct("!I")


class WireError(Exception):
    """A frame that is too large, truncated or not in the format."""


class Opaque:
    """A value the candidate returned that has no plain form; equal to nothing."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __eq__(self, other: object) -> bool:
        return False

    def __hash__(self) -> int:
        return id(self)

    def __repr__(self) -> str:
        return f"<opaque {self.text}>"


def encode(value: Any, depth: int = 0) -> Any:
    """A JSON-able form. Dispatch is on the exact type, so subclasses become opaque."""
    if depth > MAX_DEPTH:
        raise WireError("value nested too deeply")
    t = type(value)
    if value is None or t is bool or t is str:
        return value
    if t is int:
        return value if abs(value) < 2**53 else {"$i": str(value)}
    if t is float:
        return value if math.isfinite(value) else {"$f": repr(value)}
    if t is list:
        return [encode(v, depth + 1) for v in value]
    if t is tuple:
        return {"$t": [encode(v, depth + 1) for v in value]}
    if t is dict:
        return {"$d": [[encode(k, depth + 1), encode(v, depth + 1)] for k, v in value.items()]}
    if t is set or t is frozenset:
        return {"$s" if t is set else "$fs": [encode(v, depth + 1) for v in value]}
    if t is bytes:
        return {"$b": base64.b64encode(value).decode()}
    if t is complex:
        return {"$c": [value.real, value.imag]}
    return {"$o": f"{t.__name__}"}


def decode(obj: Any, depth: int = 0) -> Any:
    """Builtins from the JSON-able form; anything unexpected is a WireError."""
    if depth > MAX_DEPTH:
        raise WireError("value nested too deeply")
    if obj is None or isinstance(obj, bool | str | float):
        return obj
    if isinstance(obj, int):
        return int(obj)
    if isinstance(obj, list):
        return [decode(v, depth + 1) for v in obj]
    if not isinstance(obj, dict) or len(obj) != 1:
        raise WireError("malformed value")
    ((tag, body),) = obj.items()
    if tag == "$i" and isinstance(body, str):
        return int(body)
    if tag == "$f" and body in ("nan", "inf", "-inf"):
        return float(body)
    if tag == "$t" and isinstance(body, list):
        return tuple(decode(v, depth + 1) for v in body)
    if tag == "$d" and isinstance(body, list):
        out = {}
        for pair in body:
            if not isinstance(pair, list) or len(pair) != 2:
                raise WireError("malformed dict item")
            key = decode(pair[0], depth + 1)
            try:
                out[key] = decode(pair[1], depth + 1)
            except TypeError:
                raise WireError("unhashable dict key") from None
        return out
    if tag in ("$s", "$fs") and isinstance(body, list):
        try:
            items = [decode(v, depth + 1) for v in body]
            return set(items) if tag == "$s" else frozenset(items)
        except TypeError:
            raise WireError("unhashable set item") from None
    if tag == "$b" and isinstance(body, str):
        return base64.b64decode(body, validate=True)
    if tag == "$c" and isinstance(body, list) and len(body) == 2:
        return complex(float(body[0]), float(body[1]))
    if tag == "$o" and isinstance(body, str):
        return Opaque(body[:100])
    raise WireError(f"unknown tag {tag[:20]!r}")


def frame(message: dict[str, Any]) -> bytes:
    """The bytes `send` puts on the wire for `message`."""
    data = json.dumps(message, separators=(",", ":")).encode("utf-8")
    if len(data) > MAX_FRAME:
        raise WireError("frame too large")
    return _HEADER.pack(len(data)) + data


def send(sock: socket.socket, message: dict[str, Any]) -> None:
    sock.sendall(frame(message))


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    chunks = []
    while n:
        chunk = sock.recv(min(n, 1 << 20))
        if not chunk:
            raise EOFError
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def recv(sock: socket.socket) -> dict[str, Any]:
    """One frame; EOFError when the peer is gone, WireError when the frame is bad."""
    (size,) = _HEADER.unpack(_recv_exact(sock, _HEADER.size))
    if size > MAX_FRAME:
        raise WireError("frame too large")
    try:
        message = json.loads(_recv_exact(sock, size).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, ValueError, RecursionError):
        raise WireError("frame is not JSON") from None
    if not isinstance(message, dict):
        raise WireError("frame is not an object")
    return message


# The control channel after the start-up hello: fixed-size binary messages, cheap to make
# in the zygote (every allocation there lands on pages its live clones share).
REQUEST = struct.Struct("=II")  # request id, slot; the program's socket rides along
REPLY = struct.Struct("=Biiq")  # kind, then (id, pid) | (id, errno) | (pid, status, cpu µs)
SPAWNED, SPAWN_FAILED, EXITED = 1, 2, 3
