"""The worker entry: which resources it advertises, and what it needs."""

from __future__ import annotations

import pytest

from bl_reservoir.errors import UnknownAlgorithm, UsageError
from bl_reservoir.scale.worker import serve, worker_resources


def test_one_resource_per_algorithm_package():
    assert worker_resources("energy_detection/preprocess_fine", 4) == {"energy_detection": 4}
    assert worker_resources(["energy_detection/preprocess_fine", "dedoppler/search"], 2) == \
        {"energy_detection": 2, "dedoppler": 2}
    assert {"energy_detection", "dedoppler"} <= set(worker_resources(None, 1))
    with pytest.raises(UnknownAlgorithm):
        worker_resources("nope/nope", 1)


def test_a_worker_needs_a_scheduler(monkeypatch):
    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS", raising=False)
    with pytest.raises(UsageError, match="a worker needs a scheduler"):
        serve("energy_detection/preprocess_fine")
