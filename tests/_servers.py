"""Real services on 127.0.0.1 ephemeral ports, for tests: GCS emulator, S3 (moto), plain http;
`require`, which skips a test whose service is missing (or fails it in CI); and `benchmark_module`,
the helpers the benchmarks and the tests share (reference methods, the turboSETI venv).

Each is a context manager yielding what a client needs; the matching fixtures are in conftest.py.
"""

from __future__ import annotations

import functools
import http.server
import importlib.util
import logging
import os
import shutil
import socket
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest


def benchmark_module(name: str):
    """Module `benchmarks/<name>.py` (benchmarks are scripts, not a package)."""
    path = Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def require(condition: bool, reason: str) -> None:
    """Skip when a service is missing, unless CI asked for every service (then fail)."""
    if condition:
        return
    if os.environ.get("BL_RESERVOIR_REQUIRE_SERVICES"):
        pytest.fail(f"required service missing: {reason}")
    pytest.skip(reason)


def require_executable(name: str) -> str:
    path = shutil.which(name)
    require(path is not None, f"{name} is not installed")
    return path  # type: ignore[return-value]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_port(port: int, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout_s} s")


@dataclass
class Service:
    """A running service: its endpoint URL and the bucket name made for the tests."""

    endpoint: str
    bucket: str


@contextmanager
def gcs_emulator(bucket: str = "bl-test"):
    """`gcp-storage-emulator` in memory, with `bucket` created."""
    from gcp_storage_emulator.server import create_server

    port = free_port()
    server = create_server("127.0.0.1", port, in_memory=True, default_bucket=bucket)
    server.start()
    try:
        _wait_for_port(port)
        yield Service(f"http://127.0.0.1:{port}", bucket)
    finally:
        server.stop()


@contextmanager
def s3_server(bucket: str = "bl-test"):
    """moto's threaded S3 server, with `bucket` created through boto3."""
    import boto3
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one log line per request otherwise
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        _wait_for_port(port)
        endpoint = f"http://127.0.0.1:{port}"
        boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="test",
                     aws_secret_access_key="test").create_bucket(Bucket=bucket)
        yield Service(endpoint, bucket)
    finally:
        server.stop()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # keep test output clean
        pass

    def do_GET(self):
        if self.server.failures_left > 0:
            self.server.failures_left -= 1
            self.send_error(503, "try again")
            return
        super().do_GET()


@contextmanager
def http_server(root: Path, fail_first: int = 0):
    """`http.server` serving the files under `root` (missing files give 404); the first
    `fail_first` GET requests get a 503, as from an overloaded server."""
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.failures_left = fail_first
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
