"""The sandbox's wire format: length-prefixed frames of tagged JSON, plain values only.

The parent decodes what a candidate process sends into builtins only (no pickle, no
classes of the candidate's), so an object whose `__eq__` always says True, or an `int`
subclass that lies, cannot cross: at most the plain value it claims to be arrives.
"""

from __future__ import annotations

import json
import math
import select
import socket
import struct
import time
from typing import Any

MAX_FRAME = 16 * 1024 * 1024
READ_SIZE = 64 * 1024  # below glibc's mmap threshold: a read buffer comes off the heap
MAX_DEPTH = 64
MAX_SAME_HASH = 256  # distinct values of one container that may share a hash (see _spread)
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
        # Hex, not base64: `bytes.hex` is a builtin, and base64 would load binascii and libz
        # into the zygote, ten more mappings every clone copies and tears down.
        return {"$b": value.hex()}
    if t is complex:
        return {"$c": [value.real, value.imag]}
    return {"$o": f"{t.__name__}"}


def decode(obj: Any) -> Any:
    """Builtins from the JSON-able form; anything unexpected is a WireError, never another
    exception: a reply is the candidate's to make up, and must not break the parent."""
    try:
        return _decode(obj, 0)
    except WireError:
        raise
    except (TypeError, ValueError, OverflowError, RecursionError) as exc:
        raise WireError(f"malformed value ({type(exc).__name__})") from None


def _decode(obj: Any, depth: int) -> Any:
    if depth > MAX_DEPTH:
        raise WireError("value nested too deeply")
    if obj is None or isinstance(obj, bool | str | float):
        return obj
    if isinstance(obj, int):
        return int(obj)
    if isinstance(obj, list):
        items = [_decode(v, depth + 1) for v in obj]
        _spread(items)
        return items
    if not isinstance(obj, dict) or len(obj) != 1:
        raise WireError("malformed value")
    ((tag, body),) = obj.items()
    if tag == "$i" and isinstance(body, str):
        return int(body)  # CPython refuses more than 4,300 digits (ValueError), in linear time
    if tag == "$f" and body in ("nan", "inf", "-inf"):
        return float(body)
    if tag == "$t" and isinstance(body, list):
        items = [_decode(v, depth + 1) for v in body]
        _spread(items)
        return tuple(items)
    if tag == "$d" and isinstance(body, list):
        pairs = []
        for pair in body:
            if not isinstance(pair, list) or len(pair) != 2:
                raise WireError("malformed dict item")
            pairs.append((_decode(pair[0], depth + 1), _decode(pair[1], depth + 1)))
        _spread([k for k, _ in pairs])
        return dict(pairs)
    if tag in ("$s", "$fs") and isinstance(body, list):
        items = [_decode(v, depth + 1) for v in body]
        _spread(items)
        return set(items) if tag == "$s" else frozenset(items)
    if tag == "$b" and isinstance(body, str):
        return bytes.fromhex(body)  # ValueError unless hex digits in pairs
    if tag == "$c" and isinstance(body, list) and len(body) == 2:
        return complex(float(body[0]), float(body[1]))
    if tag == "$o" and isinstance(body, str):
        return Opaque(body[:100])
    raise WireError(f"unknown tag {str(tag)[:20]!r}")


def _spread(values: list[Any]) -> None:
    """Refuse values built to share one hash, before any set or dict is made of them.

    Integer (and so tuple) hashes are predictable: 100k distinct ints that are multiples of
    2**61-1 all hash alike, and a set of them takes minutes to build, holding the GIL. That
    set may be built here (a `$s` reply) or by a test (`set(candidate(x))` on a list), so
    lists and tuples are checked too. Honest values practically never have more than
    `MAX_SAME_HASH` distinct members sharing one full hash (powers of two, the most natural
    case, reach ~234 before CPython refuses their digits), so the cost a reply can impose
    on any set built of it stays linear. O(n log n): hashes are sorted, not hashed again,
    and a large group's members are told apart by their reprs (str hashes are seeded).
    """
    if len(values) <= MAX_SAME_HASH:
        return
    keyed = []
    for i, v in enumerate(values):
        try:
            keyed.append((hash(v), i))
        except TypeError:
            continue  # unhashable: it cannot go into a set (or a key) at all
    if len(keyed) <= MAX_SAME_HASH:
        return
    keyed.sort()
    start = 0
    for end in range(1, len(keyed) + 1):
        if end < len(keyed) and keyed[end][0] == keyed[start][0]:
            continue
        if end - start > MAX_SAME_HASH:
            group = {repr(values[i]) for _, i in keyed[start:end]}
            if len(group) > MAX_SAME_HASH:
                raise WireError(f"more than {MAX_SAME_HASH} distinct values share one hash")
        start = end


def _unencodable(value: Any) -> Any:
    raise TypeError(f"{type(value).__name__} is not JSON")


# The encoder and the scanner are built once, here (in the zygote, for every clone): through
# json.dumps and json.loads each message would run five Python functions and make an
# encoder object, objects and pages a program touches, and so copies on write, every time.
# Messages are made of `encode`'s plain values, never circular (so no markers).
_ENCODE = json.encoder.c_make_encoder(  # type: ignore[misc]  # CPython's _json: always there
    None, _unencodable, json.encoder.encode_basestring_ascii, None, ":", ",", False, False, True
)
_SCAN = json.decoder.JSONDecoder().scan_once


def body(message: dict[str, Any]) -> bytes:
    """`message` encoded, as a frame carries it (as `json.dumps` with separators "," and
    ":" would)."""
    return "".join(_ENCODE(message, 0)).encode("utf-8")


def frame(message: dict[str, Any]) -> bytes:
    """The bytes a Channel puts on the wire for `message`."""
    return frame_bytes(body(message))


def frame_bytes(data: bytes) -> bytes:
    """A frame around an encoded JSON object."""
    if len(data) > MAX_FRAME:
        raise WireError("frame too large")
    return _HEADER.pack(len(data)) + data


def parse(data: bytes) -> dict[str, Any]:
    """A frame's body as a message; WireError when it is not a JSON object."""
    try:
        text = data.decode("utf-8")
        message, end = _SCAN(text, 0)  # StopIteration: no value there
    except (UnicodeDecodeError, ValueError, RecursionError, StopIteration):
        raise WireError("frame is not JSON") from None
    if end != len(text):  # no whitespace or anything else around it: frames have none
        raise WireError("frame is not JSON")
    if not isinstance(message, dict):
        raise WireError("frame is not an object")
    return message


class Channel:
    """Frames over one end of a stream socket.

    Reads go through a buffer, so a frame usually costs one `recv` instead of one for the
    header and one for the body. With `deadlines=True` every read and write is non-blocking
    (MSG_DONTWAIT: the socket itself stays as it is, so the program's end is left blocking)
    and waits in `poll` until a deadline: `settimeout` would cost an extra ioctl on every
    call, and each system call hands the GIL to another verifying thread and back.
    """

    def __init__(self, sock: socket.socket, deadlines: bool = False) -> None:
        self.sock = sock
        self._buf = bytearray()
        self._poll: Any = None
        if deadlines:
            self._poll = select.poll()

    def send(self, message: dict[str, Any], deadline: float | None = None) -> None:
        self.send_frame(frame(message), deadline)

    def send_frame(self, data: bytes, deadline: float | None = None) -> None:
        """Raises TimeoutError at the deadline, BrokenPipeError when the peer is gone."""
        if self._poll is None:
            self.sock.sendall(data)
            return
        view = memoryview(data)
        while view:
            try:
                view = view[self.sock.send(view, socket.MSG_DONTWAIT) :]
            except BlockingIOError:
                self._wait(select.POLLOUT, deadline)

    def recv(self, deadline: float | None = None) -> dict[str, Any]:
        """One message; EOFError when the peer is gone, WireError when a frame is bad,
        TimeoutError at the deadline.

        A reader that comes late (this trusted side held off the CPU or the GIL past the
        deadline) still takes what the peer had sent by then: a reply that came in time
        is the answer, not a timeout. Only what is in the socket at that moment counts,
        so a peer that trickles bytes cannot stretch the deadline."""
        late = False
        while True:
            message = self._buffered()
            if message is not None:
                return message
            if late:
                raise TimeoutError
            if self._poll is not None:
                if deadline is not None and time.monotonic() >= deadline:
                    late = True
                    self._take_waiting()
                    continue
                try:
                    # What has come already, without waiting: a poll first would be one
                    # more system call, and each hands the GIL to another thread and back.
                    chunk = self.sock.recv(READ_SIZE, socket.MSG_DONTWAIT)
                except BlockingIOError:
                    self._wait(select.POLLIN, deadline)
                    continue
            else:
                chunk = self.sock.recv(READ_SIZE)
            if not chunk:
                raise EOFError
            self._buf += chunk

    def _buffered(self) -> dict[str, Any] | None:
        """The next message if all of it is in the buffer, else None."""
        if len(self._buf) < _HEADER.size:
            return None
        (size,) = _HEADER.unpack_from(self._buf)
        if size > MAX_FRAME:
            raise WireError("frame too large")
        end = _HEADER.size + size
        if len(self._buf) < end:
            return None
        data = bytes(self._buf[_HEADER.size : end])
        del self._buf[:end]
        return parse(data)

    def _take_waiting(self) -> None:
        """Move the bytes waiting in the socket right now into the buffer; no more. With
        none waiting, one read still tells a peer that is gone (EOFError) from one that
        is silent."""
        # Imported here: this module is loaded in the zygote, where every module is memory
        # each clone maps, and only a late reader on the trusted side needs these.
        import array
        import fcntl
        import termios

        waiting = array.array("i", [0])
        fcntl.ioctl(self.sock.fileno(), termios.FIONREAD, waiting)
        left = max(waiting[0], 1)
        while left > 0:
            try:
                chunk = self.sock.recv(min(left, READ_SIZE), socket.MSG_DONTWAIT)
            except BlockingIOError:
                return
            if not chunk:
                raise EOFError
            self._buf += chunk
            left -= len(chunk)

    def _wait(self, event: int, deadline: float | None) -> None:
        timeout_ms = None
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError
            timeout_ms = math.ceil(remaining * 1000)
        self._poll.register(self.sock, event)
        if not self._poll.poll(timeout_ms):
            raise TimeoutError


# The control channel after the start-up hello: fixed-size binary messages, cheap to make
# in the zygote (every allocation there lands on pages its live clones share).
# To the zygote: (0, slot) with the slot's request channel riding along, to start the
# slot's server. To a slot server: (request id, slot) with the program's socket.
REQUEST = struct.Struct("=II")
# kind, then (id, pid) | (id, errno) | (pid, status, cpu µs) | (slot, pid) | (slot, pid, status)
REPLY = struct.Struct("=Biiq")
SPAWNED, SPAWN_FAILED, EXITED, SLOT_STARTED, SLOT_EXITED = 1, 2, 3, 4, 5
