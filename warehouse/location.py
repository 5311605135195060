"""Where a warehouse lives: a local directory, or object storage (`s3://bucket/prefix`).

`parse` turns what a user passed (`--warehouse`, `DISTILLERY_WAREHOUSE`, a flow parameter)
into a `Location`. A local directory keeps the code paths it always had (atomic renames, a
stored catalog, a compaction lock); any other location is an fsspec filesystem, which both
the writer (objects are written whole under their final, unique key) and DuckDB (through
`register_filesystem`: its httpfs extension is not needed) read and write through.

S3 (and S3-compatible servers) take the standard AWS environment: `AWS_ENDPOINT_URL_S3` or
`AWS_ENDPOINT_URL` (e.g. `http://127.0.0.1:5000` for a local moto or MinIO),
`AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` (or any botocore credential source), and
`AWS_REGION` / `AWS_DEFAULT_REGION`. Other fsspec protocols (`gs://`, `az://`, `memory://`)
take that package's own defaults.

What cannot live on object storage (trained model folders, TRL export files) goes to a
local side directory, `local_dir`: `DISTILLERY_LOCAL_DIR` when set, else one per URL under
the user's cache directory (`~/.cache/distillery/warehouses/<scheme>/<bucket>/<prefix>`).
"""

from __future__ import annotations

import functools
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from distillery.warehouse.errors import WarehouseError

LOCAL_DIR_ENV = "DISTILLERY_LOCAL_DIR"
S3_PROTOCOLS = ("s3", "s3a")
# `scheme:/rest` with one slash or more: every stage hands the location on through
# `pathlib.Path`, which collapses `s3://bucket` into `s3:/bucket`, so both spell a URL. Two
# letters at least, so that a Windows drive (`C:/`) is never read as a scheme.
_URL = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]+):/+(.*)$")
# Bounded so that a wrong or unreachable endpoint fails in seconds, not minutes of retries.
_S3_CONFIG = {"connect_timeout": 5, "read_timeout": 60, "retries": {"max_attempts": 3}}


@dataclass(frozen=True)
class Location:
    """A parsed warehouse location. Plain strings only: it pickles to other processes,
    and the filesystem object is made (once per process) where it is used."""

    url: str  # `s3://bucket/prefix`, or the local directory as given
    protocol: str  # "" for a local directory
    base: str  # the path inside the filesystem: `bucket/prefix`; the directory when local

    @property
    def is_local(self) -> bool:
        return not self.protocol

    @property
    def path(self) -> Path:
        """The local directory; object storage has none (`local_dir` is its side one)."""
        if not self.is_local:
            raise WarehouseError(f"{self.url} is on object storage, not a local directory")
        return Path(self.base)

    @property
    def bucket(self) -> str:
        return self.base.split("/", 1)[0]

    def key(self, *parts: str) -> str:
        """A path inside the filesystem (what fsspec calls take)."""
        return "/".join([self.base.rstrip("/"), *parts]) if parts else self.base

    def uri(self, *parts: str) -> str:
        """A full URL (what DuckDB's `read_parquet` takes)."""
        return f"{self.protocol}://{self.key(*parts)}"

    @property
    def fs(self) -> Any:
        """The fsspec filesystem of an object-storage location."""
        if self.is_local:
            raise WarehouseError(f"{self.url} is a local directory")
        return filesystem(self.protocol)

    @property
    def local_dir(self) -> Path:
        """Where local-only files go: the directory itself, or the side directory of an
        object-storage location (see the module docstring)."""
        if self.is_local:
            return Path(self.base)
        explicit = os.environ.get(LOCAL_DIR_ENV)
        if explicit:
            return Path(explicit)
        cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
        return cache / "distillery" / "warehouses" / self.protocol / self.base.strip("/")

    def __str__(self) -> str:
        return self.url

    def __fspath__(self) -> str:
        # `Path(location)` for a local directory; an object store's has no path to give.
        return str(self.path)


def remote(where: str | os.PathLike[str] | Location) -> Location | None:
    """The object-storage location `where` names; None for a local directory, whose code
    paths (`Path` based, with renames and locks) are unchanged."""
    location = parse(where)
    return None if location.is_local else location


def parse(where: str | os.PathLike[str] | Location) -> Location:
    """A location from a directory, a URL, or a URL that went through `pathlib.Path`."""
    if isinstance(where, Location):
        return where
    text = os.fspath(where)
    match = _URL.match(text)
    if match is None:
        return Location(text, "", text)
    scheme, rest = match.group(1).lower(), match.group(2).strip("/")
    if scheme == "file":
        return Location(f"/{rest}", "", f"/{rest}")
    if not _known(scheme):
        raise WarehouseError(
            f"unknown warehouse scheme {scheme!r} in {scheme}://{rest}; pass a directory or "
            f"s3://bucket/prefix"
        )
    if not rest:
        raise WarehouseError(f"no bucket in {text!r}; pass {scheme}://bucket/prefix")
    return Location(f"{scheme}://{rest}", scheme, rest)


def _known(scheme: str) -> bool:
    if scheme in S3_PROTOCOLS:
        return True
    try:
        from fsspec.registry import known_implementations
    except ImportError:
        return False
    # Local-file and HTTP(S) "filesystems" are not places to write a warehouse.
    return scheme in known_implementations and scheme not in {"local", "http", "https"}


_FILESYSTEMS: dict[tuple[int, str, tuple[str, ...]], Any] = {}
_FS_LOCK = threading.Lock()


def filesystem(protocol: str) -> Any:
    """The fsspec filesystem for `protocol`, one per process and configuration.

    Per process because an S3 client's connections and event loop do not survive `fork`.
    Directory listings are never cached: the views glob the tables at every query and must
    see the objects other processes wrote since.
    """
    env = tuple(os.environ.get(v, "") for v in _S3_ENV) if protocol in S3_PROTOCOLS else ()
    key = (os.getpid(), protocol, env)
    with _FS_LOCK:
        if key not in _FILESYSTEMS:
            _FILESYSTEMS[key] = _make(protocol)
        return _FILESYSTEMS[key]


_S3_ENV = (
    "AWS_ENDPOINT_URL_S3",
    "AWS_ENDPOINT_URL",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ACCESS_KEY_ID",
    "AWS_PROFILE",
)


def _make(protocol: str) -> Any:
    if protocol not in S3_PROTOCOLS:
        import fsspec

        return fsspec.filesystem(protocol, skip_instance_cache=True, use_listings_cache=False)
    client: dict[str, str] = {}
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    if endpoint:
        client["endpoint_url"] = endpoint
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if region:
        client["region_name"] = region
    return _listing_s3()(
        skip_instance_cache=True,
        use_listings_cache=False,
        client_kwargs=client,
        config_kwargs=_S3_CONFIG,
    )


@functools.cache
def _listing_s3() -> type:
    """s3fs's filesystem, globbing with one listing and answering `info` from it.

    DuckDB opens each file a query's glob matched and asks its modification time, and
    s3fs answers each with a HEAD request, on top of a LIST per folder of the glob: ~60
    requests to count one table of 17 files. Here a glob is one paged LIST of the prefix
    before its first wildcard (every query still lists afresh: rows written since are
    seen), and what it returned answers the `info` of those keys until the next glob:
    a data file is never changed once written, only a schema file may be rewritten, and
    the next listing carries its new size.
    """
    try:
        import s3fs
        from fsspec.utils import glob_translate
    except ImportError:
        raise WarehouseError(
            "an s3:// warehouse needs s3fs: pip install 'distillery[s3]'"
        ) from None

    class ListingS3FileSystem(s3fs.S3FileSystem):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._listed: dict[str, dict[str, Any]] = {}

        async def _glob(self, path: str, **kwargs: Any) -> Any:
            detail = kwargs.pop("detail", False)
            path = self._strip_protocol(path)
            magic = re.search(r"[*?\[]", path)
            if magic is None or kwargs or "/" not in path[: magic.start()]:
                found = await super()._glob(path, detail=True, **kwargs)
            else:
                prefix = path[: magic.start()].rsplit("/", 1)[0]
                pattern = re.compile(glob_translate(path))
                listed = await self._find(prefix, detail=True)
                found = {k: v for k, v in listed.items() if pattern.match(k)}
            self._listed.update((k, v) for k, v in found.items() if v.get("type") == "file")
            return found if detail else list(found)

        async def _info(self, path: str, *args: Any, **kwargs: Any) -> Any:
            # s3fs passes `version_id=None` / `refresh=False`: still the latest object.
            fresh = any(v not in (None, False) for v in kwargs.values())
            hit = None if fresh else self._listed.get(self._strip_protocol(path))
            if hit is not None:
                return dict(hit)
            return await super()._info(path, *args, **kwargs)

        def invalidate_cache(self, path: str | None = None) -> None:
            # Called by s3fs after its own writes and removals: forget what was listed.
            super().invalidate_cache(path)
            self._listed.clear()

    return ListingS3FileSystem


def endpoint_of(location: Location) -> str:
    """Where an S3 location's requests go, for error messages."""
    if location.protocol not in S3_PROTOCOLS:
        return location.protocol
    return (
        os.environ.get("AWS_ENDPOINT_URL_S3")
        or os.environ.get("AWS_ENDPOINT_URL")
        or "AWS S3 (set AWS_ENDPOINT_URL for another server)"
    )
