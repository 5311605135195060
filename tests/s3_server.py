"""A throwaway S3-compatible server for the tests: moto's standalone server (`moto[server]`)
on a free port, and the AWS environment pointed at it.

The fixtures in tests/conftest.py (`s3_server`, `bucket`) use it; every process the tests
start (the CLI, writer processes) inherits that environment and so reaches the same server.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from distillery.warehouse.location import LOCAL_DIR_ENV

# Variables that would send requests elsewhere or pick other credentials: unset while it runs.
OTHER_AWS = ("AWS_ENDPOINT_URL_S3", "AWS_PROFILE", "AWS_DEFAULT_REGION")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(port: int, proc: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"moto_server exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"moto_server did not listen on {port} within {timeout} s")


@contextmanager
def running(side_dir: Path) -> Iterator[str]:
    """moto's S3 server on a free port, with this process's AWS environment pointing at it
    and object-storage warehouses' local side directory under `side_dir`; yields the
    endpoint. Skips the test when moto or s3fs is missing."""
    pytest.importorskip("moto.server", reason="needs moto[server]: pip install '.[test]'")
    pytest.importorskip("s3fs", reason="needs s3fs: pip install '.[s3]'")
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    env = {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
        LOCAL_DIR_ENV: str(side_dir),
    }
    with pytest.MonkeyPatch.context() as mp:
        for name in OTHER_AWS:
            mp.delenv(name, raising=False)
        for name, value in env.items():
            mp.setenv(name, value)
        try:
            wait_for(port, proc)
            yield endpoint
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def new_bucket(endpoint: str) -> str:
    """A new, empty bucket on the server at `endpoint`."""
    import boto3  # moto's own dependency

    name = f"wh-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=name)
    return name
