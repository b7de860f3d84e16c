"""Helpers of the web tests: fake results, raw ASGI requests, a live uvicorn server, PNG sizes."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd

from bl_reservoir.results import build_manifest, write_results

OBS = "GBT_58402_67632_HIP65057_fine"
OTHER = "GBT_58410_11111_HIP99999_fine"
TOKEN = "s3cret-token"
WIDTH = 4096


from _servers import free_port, require  # noqa: F401  (re-exported for the web tests)


def write_fake_result(bucket: Path, obs: str, n_hits: int, *, seed: int = 0, fch1: float = 1420.0,
                      tstart: float = 58410.1, source: str = "HIP99999") -> Path:
    """A complete energy-detection-like result written directly (for lists, sorting, paging)."""
    rng = np.random.default_rng(seed)
    foff = -2.7939677238464355e-6
    index = np.sort(rng.choice(WIDTH * 2, n_hits, replace=False))
    hits = pd.DataFrame({"index": index, "statistic": rng.uniform(3000, 9000, n_hits),
                         "pvalue": rng.uniform(0, 1e-9, n_hits), "freqs": fch1 + foff * index,
                         "coarse_channel": index // WIDTH})
    stamps = rng.normal(size=(n_hits, 16, 256)).astype(np.float32)
    header = {"source_name": source, "tstart": tstart, "fch1": fch1, "foff": foff, "nchans": WIDTH * 2,
              "tsamp": 18.253611008, "nbits": 32, "nifs": 1, "telescope_id": 6}
    manifest = build_manifest(algorithm={"package": "energy_detection", "name": "preprocess_fine",
                                         "version": "test"}, input_uri=f"/data/{obs}.h5")
    return write_results(bucket / obs / "energy_detection" / "preprocess_fine", header, hits, stamps, manifest)


def make_client(bucket, db_path, **kw):
    from fastapi.testclient import TestClient

    from bl_reservoir.web import create_app

    app = create_app(bucket=str(bucket), db=f"sqlite:///{db_path}", **kw)
    return TestClient(app)


def asgi_get(app, raw_path: bytes, headers: list[tuple[bytes, bytes]] = ()) -> tuple[int, bytes]:
    """GET a raw, unnormalised path straight through the ASGI app (HTTP clients clean `..` away)."""
    path, _, query = raw_path.partition(b"?")
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
             "path": path.decode("latin-1"), "raw_path": path, "query_string": query, "root_path": "",
             "headers": [(b"host", b"testserver"), *headers], "client": ("127.0.0.1", 1),
             "server": ("testserver", 80)}
    sent: list[dict] = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    return status, b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")


class LiveServer:
    """The app under uvicorn in a thread on 127.0.0.1 with an ephemeral port."""

    def __init__(self, app):
        import uvicorn

        self.app = app
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                                    lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self):
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(30)


def png_size(data: bytes) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert data[12:16] == b"IHDR"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
