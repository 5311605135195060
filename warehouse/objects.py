"""The warehouse's files on object storage: written whole under their final key, listed,
their footers read, and failures turned into one line that says what to do.

An object store has no rename, and needs none: a PUT becomes visible whole or not at all,
and every data file's name is unique (`writer_parquet.data_file_name`), so the writer puts
each file straight under its final key. The bytes are built in memory first and sent in
one call, never streamed into an open object: fsspec completes an object when its file is
closed, even by an exception, so a failed Parquet write would otherwise publish a torn file.
"""

from __future__ import annotations

import contextlib
import io
import uuid
from collections.abc import Callable, Iterator
from typing import BinaryIO

import pyarrow.parquet as pq

from distillery.warehouse.errors import WarehouseError
from distillery.warehouse.location import Location, endpoint_of

PROBE_PREFIX = ".write-probe-"
# Packages whose exceptions mean "the service failed", whatever their type.
CLIENT_MODULES = frozenset({"botocore", "aiobotocore", "aiohttp", "urllib3", "s3fs", "fsspec"})


@contextlib.contextmanager
def plainly(location: Location, doing: str) -> Iterator[None]:
    """Any failure of the filesystem inside the block, as one `WarehouseError` line."""
    try:
        yield
    except WarehouseError:
        raise
    except FileNotFoundError as exc:
        if _no_bucket(exc):
            raise WarehouseError(
                f"cannot {doing} {location.url}: no bucket {location.bucket!r} at "
                f"{endpoint_of(location)}; create it first (`aws s3 mb "
                f"{location.protocol}://{location.bucket}`) or pass another --warehouse"
            ) from None
        raise WarehouseError(f"cannot {doing} {location.url}: {_first_line(exc)}") from None
    except PermissionError as exc:
        raise WarehouseError(
            f"cannot {doing} {location.url}: access denied ({_first_line(exc)}); check the "
            f"credentials (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or AWS_PROFILE)"
        ) from None
    except Exception as exc:
        # botocore's connection errors are not OSErrors; a bug of ours stays a traceback.
        if not isinstance(exc, OSError) and not _from_client(exc):
            raise
        raise WarehouseError(
            f"cannot {doing} {location.url} at {endpoint_of(location)} "
            f"({type(exc).__name__}: {_first_line(exc)}); check AWS_ENDPOINT_URL and that "
            f"the server is up"
        ) from None


def _from_client(exc: BaseException) -> bool:
    """Whether an exception comes from the S3 client or its HTTP stack."""
    return type(exc).__module__.split(".")[0] in CLIENT_MODULES


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


def _no_bucket(exc: FileNotFoundError) -> bool:
    # s3fs's text for S3's NoSuchBucket; a missing key under a bucket says otherwise.
    return "bucket does not exist" in str(exc).lower() or "NoSuchBucket" in repr(exc)


def probe(location: Location) -> None:
    """Write and remove one small object at the location: fails (WarehouseError) before
    anything else is written when the endpoint, bucket or credentials are wrong."""
    fs = location.fs
    key = location.key(f"{PROBE_PREFIX}{uuid.uuid4().hex}")
    with plainly(location, "write to"):
        fs.pipe_file(key, b"")
        fs.rm_file(key)


def has_tables(location: Location) -> bool:
    """Whether a warehouse was opened at the location (a missing bucket or an unreachable
    endpoint is a WarehouseError, not a no)."""
    with plainly(location, "read"):
        try:
            return bool(location.fs.ls(location.key("tables"), detail=False))
        except FileNotFoundError as exc:
            if _no_bucket(exc):
                raise
            return False


def put(location: Location, key: str, write: Callable[[BinaryIO], None]) -> str:
    """Write an object through `write` under `key` (inside the filesystem); its URL."""
    buffer = io.BytesIO()
    write(buffer)
    with plainly(location, "write to"):
        location.fs.pipe_file(key, buffer.getvalue())
    return f"{location.protocol}://{key}"


def exists(location: Location, key: str) -> bool:
    with plainly(location, "read"):
        return bool(location.fs.exists(key))


def parquet_keys(location: Location, pattern: str) -> list[str]:
    """The keys matching a glob (inside the filesystem), Parquet files only."""
    with plainly(location, "list"):
        return sorted(k for k in location.fs.glob(pattern) if k.endswith(".parquet"))


def footer(location: Location, key: str) -> pq.FileMetaData:
    """A file's Parquet footer (FileNotFoundError when it is gone)."""
    with location.fs.open(key, "rb") as fh:
        return pq.read_metadata(fh)
