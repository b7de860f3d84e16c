"""Shared fixtures: small synthetic observations and storage services (`require` is in _servers.py).

Nothing heavy is imported here at module level: collection stays cheap (synth pulls in pandas).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from _backends import BUCKET_BACKENDS, INPUT_BACKENDS, make_backend

#: A narrow coarse channel keeps test files small; the code never assumes 2**20.
SMALL_WIDTH = 4096
#: The test servers listen on 127.0.0.1, a host http(s) inputs may not come from by default (io/hosts.py):
#: the session allows loopback, as an operator would for a local source. tests/io/test_hosts.py unsets it.
LOOPBACK_INPUT_HOSTS = "public,127.0.0.1,localhost"


@pytest.fixture(scope="session", autouse=True)
def loopback_inputs_allowed():
    """`BL_RESERVOIR_INPUT_HOSTS` allows 127.0.0.1 for the whole session (subprocesses inherit it)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("BL_RESERVOIR_INPUT_HOSTS", LOOPBACK_INPUT_HOSTS)
        yield


@pytest.fixture
def small_obs(tmp_path: Path):
    """Factory: `small_obs(name, n_coarse=2, signals={cc: [Signal...]}, **kw)` -> (path, truth)."""
    from bl_reservoir.synth import make_observation

    def make(name: str = "obs.h5", n_coarse: int = 2, width: int = SMALL_WIDTH, **kw):
        return make_observation(tmp_path / name, n_coarse_channels=n_coarse, coarse_channel_width=width,
                                seed=kw.pop("seed", 1), **kw)

    return make


@pytest.fixture
def strong_signal_obs(small_obs):
    """Two coarse channels of 4096, one strong drifting signal in each (known positions)."""
    from bl_reservoir.synth import Signal

    signals = {0: [Signal(index=1000, drift_rate=0.5, snr=60.0, width=4.0)],
               1: [Signal(index=3000, drift_rate=-0.3, snr=60.0, width=4.0)]}
    return small_obs("strong.h5", signals=signals)


# ---- storage services (tests/_servers.py), shared by the runner, scale and web tests ----

@pytest.fixture(scope="session")
def gcs_service():
    """A GCS emulator on 127.0.0.1 for the whole session; use `gcs_env` to point clients at it."""
    from _servers import gcs_emulator

    with gcs_emulator() as service:
        yield service


@pytest.fixture
def gcs_env(gcs_service, monkeypatch):
    """Point gcsfs and google-cloud-storage at the emulator; yields the service (endpoint, bucket)."""
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_service.endpoint)
    monkeypatch.setenv("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")
    return gcs_service


@pytest.fixture(scope="session")
def s3_service():
    """moto's S3 server on 127.0.0.1 for the whole session; use `s3_env` to point clients at it."""
    from _servers import s3_server

    with s3_server() as service:
        yield service


@pytest.fixture
def s3_env(s3_service, monkeypatch):
    """Point s3fs and boto3 at the moto server with dummy credentials; yields the service."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_service.endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    return s3_service


@pytest.fixture
def http_root(tmp_path):
    """(folder, base URL): files put in the folder are served over http on 127.0.0.1."""
    from _servers import http_server

    root = tmp_path / "www"
    root.mkdir()
    with http_server(root) as url:
        yield root, url


def _on_each(names: tuple[str, ...]) -> list:
    """Fixture params: one per backend, those needing a server marked `services`."""
    return [name if name == "local" else pytest.param(name, marks=pytest.mark.services) for name in names]


@pytest.fixture(params=_on_each(BUCKET_BACKENDS))
def bucket_backend(request, tmp_path):
    """An empty bucket on each backend in turn (local folder, gs:// emulator, s3:// moto): a `_backends.Backend`."""
    return make_backend(request.param, request, tmp_path)


@pytest.fixture(params=_on_each(INPUT_BACKENDS))
def input_backend(request, tmp_path):
    """An empty remote input source on each backend in turn (http, gs:// emulator, s3:// moto)."""
    return make_backend(request.param, request, tmp_path)
