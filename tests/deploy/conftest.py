"""Fixtures for tests/deploy: the manifests parsed once per session."""

from __future__ import annotations

import pytest
from deploy_files import Resource, load_resources


@pytest.fixture(scope="session")
def resources() -> list[Resource]:
    return load_resources()


@pytest.fixture(scope="session")
def workloads(resources) -> list[Resource]:
    return [r for r in resources if r.pod is not None]
