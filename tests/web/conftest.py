"""A real bucket for the web tests: results made by the runner on small synthetic files."""

from __future__ import annotations

import pytest
from _webapp import OBS, OTHER, TOKEN, WIDTH, make_client, write_fake_result

from bl_reservoir.synth import Signal, make_observation


@pytest.fixture(scope="session")
def runner_bucket(tmp_path_factory):
    """A bucket with dedoppler and energy-detection results of one observation (made by the runner),
    plus a small energy-detection result of a second observation; returns (bucket, truth, input path)."""
    from bl_reservoir import runner

    root = tmp_path_factory.mktemp("web")
    signals = {0: [Signal(index=1000, drift_rate=0.5, snr=60.0, width=4.0)],
               1: [Signal(index=3000, drift_rate=-0.3, snr=60.0, width=4.0)]}
    path, truth = make_observation(root / f"{OBS}.h5", n_coarse_channels=2, coarse_channel_width=WIDTH, seed=3,
                                   signals=signals)
    bucket = root / "bucket"
    for algorithm in ("dedoppler/search", "energy_detection/preprocess_fine"):
        runner.run_job(algorithm, str(path), bucket=str(bucket))
    write_fake_result(bucket, OTHER, 5)
    return bucket, truth, path


@pytest.fixture
def client(runner_bucket, tmp_path):
    """A test client over the runner's bucket with a fresh store (indexed at start-up) and a token."""
    with make_client(runner_bucket[0], tmp_path / "store.db", token=TOKEN) as c:
        if c.app.state.indexer is not None:
            c.app.state.indexer.join(60)
        yield c


