"""`bl-reservoir serve`: the command serves the app; bad settings fail with one line."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import httpx
from _webapp import OBS, free_port


def test_auth_read_without_a_token_is_refused(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "BL_RESERVOIR_TOKEN"}
    done = subprocess.run([sys.executable, "-m", "bl_reservoir.cli", "serve", "--auth-read", "--bucket",
                           str(tmp_path)], check=False, capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "bl-reservoir: error: --auth-read needs BL_RESERVOIR_TOKEN: without a token nobody could read"]


def test_serve_answers_over_http(runner_bucket, tmp_path):
    port = free_port()
    env = {**os.environ, "BL_RESERVOIR_TOKEN": "t0ken"}
    proc = subprocess.Popen([sys.executable, "-m", "bl_reservoir.cli", "serve", "--port", str(port), "--bucket",
                             str(runner_bucket[0]), "--db", f"sqlite:///{tmp_path / 'store.db'}"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                health = httpx.get(f"{url}/healthz", timeout=2).json()
                if not health["indexing"]:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline and proc.poll() is None, "serve did not come up"
            time.sleep(0.2)
        assert health["writes"] is True and health["bucket"] == str(runner_bucket[0])
        listing = httpx.get(f"{url}/api/observations").json()
        assert OBS in [o["obs_name"] for o in listing["items"]]
        assert "server" not in httpx.get(f"{url}/healthz").headers  # no server banner
    finally:
        proc.terminate()
        proc.wait(30)
        proc.stdout.close()  # left open, a ResourceWarning


def test_serve_refuses_a_body_limit_below_one_byte(capsys):
    from bl_reservoir.cli import main

    assert main(["serve", "--max-body-bytes", "0", "--no-index"]) == 2
    assert capsys.readouterr().err.strip() == "bl-reservoir: error: --max-body-bytes must be at least 1, not 0"
