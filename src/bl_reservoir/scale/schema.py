"""Tables of the job store and the migrations that bring any older database up to date.

The schema version lives in its own one-row table. `migrate(engine)` runs on every start: a
fresh database gets every table; an older one runs the steps above its version, each step in
its own transaction. Add a step by appending a function to `MIGRATIONS`, never by editing one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import sqlalchemy as sa

log = logging.getLogger(__name__)

#: Every job state, in the order a job goes through them.
JOB_STATES = ("queued", "running", "succeeded", "skipped", "failed", "cancelled")
#: Not over yet: `resume` re-submits these, `cancel` stops them, a campaign stays active while any is.
ACTIVE = ("queued", "running")
#: Over: nothing changes them but a user's `retry`; progress bars count these.
ENDED = ("succeeded", "skipped", "failed", "cancelled")
#: Over with a complete result in the bucket.
SUCCEEDED = ("succeeded", "skipped")

metadata = sa.MetaData()

schema_version = sa.Table(
    "schema_version", metadata,
    sa.Column("version", sa.Integer, nullable=False),
)

campaigns = sa.Table(
    "campaigns", metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("algorithm", sa.String(200), nullable=False),
    sa.Column("parameters", sa.JSON, nullable=False),       # the ALG_OPTIONS list given after `--`
    sa.Column("bucket", sa.String(1000), nullable=False),
    sa.Column("max_attempts", sa.Integer, nullable=False),
    sa.Column("created", sa.String(32), nullable=False),     # ISO 8601 UTC
    sa.Column("state", sa.String(16), nullable=False),       # active | finished | cancelled
    sa.Column("timeout_s", sa.Float),                        # per job; None: runner.DEFAULT_TIMEOUT_S
    sa.Column("max_result_bytes", sa.BigInteger),            # per job; None: runner.DEFAULT_MAX_RESULT_BYTES
)

jobs = sa.Table(
    "jobs", metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("campaign", sa.String(32), sa.ForeignKey("campaigns.id"), nullable=False, index=True),
    sa.Column("seq", sa.Integer, nullable=False),            # order of the input in the campaign
    sa.Column("input_uri", sa.String(2000), nullable=False),
    sa.Column("state", sa.String(16), nullable=False, index=True),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("worker", sa.String(200)),
    sa.Column("started", sa.String(32)),
    sa.Column("finished", sa.String(32)),
    sa.Column("wall_seconds", sa.Float),
    sa.Column("error", sa.Text),
    sa.Column("result_uri", sa.String(2000)),
    sa.Column("n_hits", sa.Integer),
    sa.Column("updated", sa.String(32), nullable=False),     # last change, or heartbeat while running
)

events = sa.Table(
    "events", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("job", sa.String(32), sa.ForeignKey("jobs.id"), nullable=False, index=True),
    sa.Column("time", sa.String(32), nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("payload", sa.JSON, nullable=False),
)

#: One row per observation that has at least one result: what the front end lists and sorts.
observations = sa.Table(
    "observations", metadata,
    sa.Column("obs_name", sa.String(500), primary_key=True),
    sa.Column("source", sa.String(200), index=True),
    sa.Column("mjd", sa.Float, index=True),                  # tstart, MJD
    sa.Column("band", sa.String(16)),                        # receiver band letter (L, S, C, X, ...)
    sa.Column("fmin_mhz", sa.Float),
    sa.Column("fmax_mhz", sa.Float),
    sa.Column("n_hits", sa.Integer, nullable=False, default=0),
    sa.Column("updated", sa.String(32), nullable=False, index=True),
)

#: One row per (observation, algorithm) result folder.
results = sa.Table(
    "results", metadata,
    sa.Column("obs_name", sa.String(500), sa.ForeignKey("observations.obs_name"), primary_key=True),
    sa.Column("algorithm", sa.String(200), primary_key=True),
    sa.Column("result_uri", sa.String(2000), nullable=False),
    sa.Column("n_hits", sa.Integer, nullable=False),
    sa.Column("job", sa.String(32)),
    sa.Column("finished", sa.String(32)),
)

hits = sa.Table(
    "hits", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("observation", sa.String(500), nullable=False),
    sa.Column("algorithm", sa.String(200), nullable=False),
    sa.Column("frequency_mhz", sa.Float, nullable=False, index=True),
    sa.Column("drift_rate", sa.Float),                       # Hz/s; None for algorithms without drift
    sa.Column("snr", sa.Float, index=True),
    sa.Column("statistic", sa.Float),
    sa.Column("result_uri", sa.String(2000), nullable=False),
    sa.Column("row", sa.Integer, nullable=False),            # row of info_df.parquet in that folder
    sa.Index("ix_hits_obs_alg", "observation", "algorithm"),
)


#: Cadences (C8): six observations, ON first, and the state of their events stage in a campaign.
cadences = sa.Table(
    "cadences", metadata,
    sa.Column("id", sa.String(500), primary_key=True),       # the observation name of the first ON
    sa.Column("campaign", sa.String(32), index=True),         # the campaign that last staged it
    sa.Column("target", sa.String(200), index=True),
    sa.Column("mjd", sa.Float, index=True),                   # tstart of the first ON
    sa.Column("band", sa.String(16)),
    sa.Column("fmin_mhz", sa.Float),
    sa.Column("fmax_mhz", sa.Float),
    sa.Column("bucket", sa.String(1000), nullable=False),
    sa.Column("parameters", sa.JSON, nullable=False),         # of the event search (filter threshold, ...)
    sa.Column("state", sa.String(16), nullable=False, index=True),  # CADENCE_STATES
    sa.Column("error", sa.Text),
    sa.Column("n_events", sa.Integer),
    sa.Column("events_uri", sa.String(2000)),                 # <bucket>/cadences/<id>/events
    sa.Column("updated", sa.String(32), nullable=False),
)

cadence_members = sa.Table(
    "cadence_members", metadata,
    sa.Column("cadence", sa.String(500), sa.ForeignKey("cadences.id"), primary_key=True),
    sa.Column("position", sa.Integer, primary_key=True),      # 0..5; ON at 0, 2, 4
    sa.Column("obs_name", sa.String(500), nullable=False, index=True),
    sa.Column("input_uri", sa.String(2000), nullable=False),
    sa.Column("job", sa.String(32)),                          # its dedoppler job in the campaign
)

#: Candidate events of a cadence: a signal in the ONs and none of the OFFs.
cadence_events = sa.Table(
    "cadence_events", metadata,
    sa.Column("cadence", sa.String(500), sa.ForeignKey("cadences.id"), primary_key=True),
    sa.Column("n", sa.Integer, primary_key=True),             # event_NNN.png
    sa.Column("frequency_mhz", sa.Float, nullable=False, index=True),
    sa.Column("drift_rate", sa.Float),                        # Hz/s, of its hit in the first ON
    sa.Column("snr", sa.Float),                               # the highest of its hits
    sa.Column("n_ons", sa.Integer, nullable=False),
    sa.Column("picture", sa.String(200)),
)

#: The hits an event joins: one per ON it was found in, each a row of that observation's result.
cadence_event_hits = sa.Table(
    "cadence_event_hits", metadata,
    sa.Column("cadence", sa.String(500), primary_key=True),
    sa.Column("n", sa.Integer, primary_key=True),
    sa.Column("position", sa.Integer, primary_key=True),
    sa.Column("obs_name", sa.String(500), nullable=False, index=True),
    sa.Column("row", sa.Integer, nullable=False),             # row of info_df.parquet (the .dat's Top_Hit_# - 1)
    sa.Column("frequency_mhz", sa.Float, nullable=False),
    sa.Column("drift_rate", sa.Float),
    sa.Column("snr", sa.Float),
    sa.ForeignKeyConstraint(["cadence", "n"], ["cadence_events.cadence", "cadence_events.n"]),
)

#: A cadence's events stage: `waiting` for its six jobs, `queued` and `running` as a task, then
#: `succeeded` or `failed` (a job of it failed, or the event search did).
CADENCE_STATES = ("waiting", "queued", "running", "succeeded", "failed")
CADENCE_ACTIVE = ("waiting", "queued", "running")


def _v1(conn: sa.Connection) -> None:
    metadata.create_all(conn)   # every table (checkfirst): later steps find theirs and skip them


def _v2(conn: sa.Connection) -> None:
    metadata.create_all(conn, tables=[cadences, cadence_members, cadence_events, cadence_event_hits])


def _v3(conn: sa.Connection) -> None:
    have = {c["name"] for c in sa.inspect(conn).get_columns("campaigns")}   # _v1 made them on a new database
    for column, kind in (("timeout_s", "FLOAT"), ("max_result_bytes", "BIGINT")):
        if column not in have:
            conn.execute(sa.text(f"ALTER TABLE campaigns ADD COLUMN {column} {kind}"))


#: Step i brings a database from version i to version i + 1 (index 0: empty -> 1).
MIGRATIONS: list[Callable[[sa.Connection], None]] = [_v1, _v2, _v3]
VERSION = len(MIGRATIONS)


def current_version(conn: sa.Connection) -> int:
    """The stored schema version; 0 for an empty database."""
    if not sa.inspect(conn).has_table("schema_version"):
        return 0
    value = conn.execute(sa.select(sa.func.max(schema_version.c.version))).scalar()
    return int(value or 0)


def migrate(engine: sa.Engine) -> int:
    """Bring the database to `VERSION`, one transaction per step; returns the version reached."""
    with engine.begin() as conn:
        version = current_version(conn)
    if version > VERSION:
        from bl_reservoir.errors import UsageError
        raise UsageError(f"{engine.url.render_as_string(hide_password=True)}: job store schema {version} "
                         f"is newer than this bl-reservoir ({VERSION}); upgrade bl-reservoir")
    for step in range(version, VERSION):
        with engine.begin() as conn:
            MIGRATIONS[step](conn)
            conn.execute(sa.delete(schema_version))
            conn.execute(sa.insert(schema_version).values(version=step + 1))
        log.info("job store migrated to schema %d", step + 1)
    return VERSION
