"""The SQL database that holds the job store and the hits index: one engine per handle, migrated on open.

SQLite by default (a file beside the bucket, `bl_reservoir.settings.db_url`), PostgreSQL or any
SQLAlchemy URL for shared deployments. Every write is one explicit transaction, so a process
killed at any instant leaves the database consistent.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from bl_reservoir.errors import UsageError
from bl_reservoir.scale import schema


class Database:
    """A handle on one database (`url` None: `settings.db_url()`); cheap to create, safe to share
    between threads. `JobStore` and `HitIndex` are the two views of it."""

    def __init__(self, url: str | None = None, *, share: Database | None = None):
        """Open the database at `url`, or share the engine of another handle on it (`share`)."""
        from bl_reservoir import settings

        if share is not None:
            self.url, self.engine = share.url, share.engine
            return
        self.url = url or settings.db_url()
        try:
            self.engine = sa.create_engine(self.url, **_engine_options(self.url))
            if self.engine.dialect.name == "sqlite":
                sa.event.listen(self.engine, "connect", _sqlite_pragmas)
        except (sa.exc.ArgumentError, ImportError) as exc:
            raise UsageError(f"{self.url}: not a usable job store URL ({exc})") from None
        try:
            schema.migrate(self.engine)
        except sa.exc.OperationalError as exc:
            self.engine.dispose()
            raise UsageError(f"{self.safe_url}: cannot open the job store ({exc.orig})") from None
        except BaseException:
            self.engine.dispose()
            raise

    @property
    def safe_url(self) -> str:
        """The URL with any password masked: the one to print or log."""
        return self.engine.url.render_as_string(hide_password=True)

    def close(self) -> None:
        self.engine.dispose()


def as_dicts(result: Any) -> list[dict[str, Any]]:
    """Every row of a query result as a plain dict."""
    return [dict(r._mapping) for r in result]


def as_dict(found: sa.Row | None) -> dict[str, Any] | None:
    """One row as a plain dict, or None."""
    return None if found is None else dict(found._mapping)


def _engine_options(url: str) -> dict[str, Any]:
    if url.startswith("sqlite"):
        # several processes (submitter, workers in detach mode, web) share one file: wait, don't fail
        return {"connect_args": {"timeout": 60}}
    return {"pool_pre_ping": True}


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")   # readers never block the writer
    cursor.execute("PRAGMA synchronous=NORMAL")  # WAL stays consistent after a crash; no fsync per event
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
