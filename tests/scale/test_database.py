"""The database under the job store and the hits index: URLs, schema versions, migration on open."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from bl_reservoir.errors import UsageError
from bl_reservoir.scale import schema
from bl_reservoir.scale.database import Database


def test_schema_version_and_migration_on_start(store_url):
    Database(store_url).close()
    engine = sa.create_engine(store_url)
    with engine.begin() as conn:
        assert schema.current_version(conn) == schema.VERSION
        conn.execute(sa.update(schema.schema_version).values(version=schema.VERSION + 5))
    with pytest.raises(UsageError, match="newer than this bl-reservoir"):
        Database(store_url)
    engine.dispose()


def test_bad_url_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="job store"):
        Database("nosuchdialect://x")
    with pytest.raises(UsageError, match="cannot open the job store"):
        Database(f"sqlite:///{tmp_path}/missing/dir/x.db")
    with pytest.raises(UsageError, match="cannot open the job store") as refused:
        Database("postgresql+psycopg://u:secret@127.0.0.1:1/x")
    assert "secret" not in str(refused.value) and "***" in str(refused.value)


def test_a_version_1_store_gains_the_cadence_tables(tmp_path):
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = sa.create_engine(url)
    v1 = [schema.schema_version, schema.campaigns, schema.jobs, schema.events, schema.observations, schema.results,
          schema.hits]
    with engine.begin() as conn:
        schema.metadata.create_all(conn, tables=v1)
        conn.execute(sa.insert(schema.schema_version).values(version=1))
    Database(url).close()
    with engine.begin() as conn:
        assert schema.current_version(conn) == schema.VERSION
        assert {"cadences", "cadence_members", "cadence_events", "cadence_event_hits"} <= set(
            sa.inspect(conn).get_table_names())
    engine.dispose()
