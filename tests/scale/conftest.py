"""Job stores for the scale tests: SQLite always, PostgreSQL when `BL_RESERVOIR_TEST_POSTGRES` names one."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest


def _root_conftest():
    # tests/ has no __init__.py, so both conftest files are "conftest": load the root one by path
    spec = importlib.util.spec_from_file_location("_blr_root_conftest", Path(__file__).parents[1] / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


require = _root_conftest().require

POSTGRES = os.environ.get("BL_RESERVOIR_TEST_POSTGRES", "").strip()


def _empty_postgres(url: str) -> str:
    import sqlalchemy as sa

    from bl_reservoir.scale import schema

    engine = sa.create_engine(url)
    try:
        schema.metadata.drop_all(engine)
    finally:
        engine.dispose()
    return url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.services)])
def store_url(request, tmp_path) -> str:
    """A SQLAlchemy URL of an empty job store, once per backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    require(bool(POSTGRES), "BL_RESERVOIR_TEST_POSTGRES is not set (.ci/run starts PostgreSQL)")
    return _empty_postgres(POSTGRES)


@pytest.fixture
def store(store_url):
    from bl_reservoir.scale.store import Store

    handle = Store(store_url)
    yield handle
    handle.close()
