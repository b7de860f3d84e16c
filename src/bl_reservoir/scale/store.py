"""The job store: campaigns, jobs, their events, and an index of every hit, in one SQL database.

SQLite by default (a file beside the bucket, `bl_reservoir.settings.db_url`), PostgreSQL or any
SQLAlchemy URL for shared deployments. Every write is one explicit transaction, so a process
killed at any instant leaves the store consistent; the schema is migrated on start.

The API others script against (the web front end above all); rows come back as plain dicts:

    store = Store(url)                                   # None: settings.db_url()
    cid = store.create_campaign(alg, inputs, parameters=[...], bucket=uri, max_attempts=3)
    store.add_jobs(cid, inputs) -> [job ids]
    store.get_campaign(cid), store.list_campaigns(limit), store.campaign_counts(cid) -> {state: n}
    store.list_jobs(campaign=None, state=None, limit, offset), store.get_job(job_id)
    store.safe_url                                       # the URL with its password masked, for messages
    store.record_event(event) -> id                      # runner event dict {"event", "time", "job", ...}
    store.job_events(job_id, after_id=0, limit)          # events with id > after_id, oldest first
    store.start_attempt(job_id, worker), store.finish_job(job_id, state, ...)
    store.requeue(cid, states) -> [jobs], store.cancel(cid) -> n, store.close_campaign(cid)
    store.index_result(job_id, obs_name, algorithm, result_uri, header, hits_df)
    store.query_hits(fmin=, fmax=, min_snr=, min_statistic=, algorithm=, observation=,
                     drift_min=, drift_max=, limit=, offset=)   # MHz, Hz/s
    store.list_observations(search=, sort=, descending=, limit=, offset=), count_observations(search)
    store.get_observation(obs_name) -> header summary + results per algorithm
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from bl_reservoir.errors import UsageError
from bl_reservoir.results import to_jsonable, utcnow
from bl_reservoir.scale import schema as t

log = logging.getLogger(__name__)

#: Receiver bands by centre frequency (MHz), as BL names them.
_BANDS = (("L", 1100.0, 1900.0), ("S", 1800.0, 2800.0), ("C", 3900.0, 8000.0), ("X", 7800.0, 11600.0),
          ("Ku", 11600.0, 18000.0))
_OBS_SORTS = {"obs_name": t.observations.c.obs_name, "source": t.observations.c.source,
              "mjd": t.observations.c.mjd, "n_hits": t.observations.c.n_hits,
              "updated": t.observations.c.updated, "band": t.observations.c.band}


def band_of(fmin_mhz: float | None, fmax_mhz: float | None) -> str | None:
    """Receiver band letter of a frequency range (MHz), by its centre; None when outside them all."""
    if fmin_mhz is None or fmax_mhz is None:
        return None
    centre = (fmin_mhz + fmax_mhz) / 2
    return next((name for name, lo, hi in _BANDS if lo <= centre < hi), None)


def _new_id() -> str:
    return uuid.uuid4().hex[:16]


def _row(row: sa.Row | None) -> dict[str, Any] | None:
    return None if row is None else dict(row._mapping)


class Store:
    """A handle on one job store database; cheap to create, safe to share between threads."""

    def __init__(self, url: str | None = None):
        from bl_reservoir import settings

        self.url = url or settings.db_url()
        try:
            self.engine = sa.create_engine(self.url, **_engine_options(self.url))
            if self.engine.dialect.name == "sqlite":
                sa.event.listen(self.engine, "connect", _sqlite_pragmas)
        except (sa.exc.ArgumentError, ImportError) as exc:
            raise UsageError(f"{self.url}: not a usable job store URL ({exc})") from None
        try:
            t.migrate(self.engine)
        except sa.exc.OperationalError as exc:
            raise UsageError(f"{self.safe_url}: cannot open the job store ({exc.orig})") from None

    @property
    def safe_url(self) -> str:
        """The URL with any password masked: the one to print or log."""
        return self.engine.url.render_as_string(hide_password=True)

    def close(self) -> None:
        self.engine.dispose()

    # -- campaigns -------------------------------------------------------------------------

    def create_campaign(self, algorithm: str, inputs: Iterable[str], *, parameters: Sequence[str] = (),
                        bucket: str, max_attempts: int = 3) -> str:
        """A new `active` campaign with one `queued` job per input, in one transaction; its id."""
        cid = _new_id()[:12]
        with self.engine.begin() as conn:
            conn.execute(sa.insert(t.campaigns).values(
                id=cid, algorithm=algorithm, parameters=list(parameters), bucket=bucket,
                max_attempts=int(max_attempts), created=utcnow(), state="active"))
            self._insert_jobs(conn, cid, list(inputs), start=0)
        return cid

    def add_jobs(self, campaign: str, inputs: Iterable[str]) -> list[str]:
        """Append queued jobs to a campaign; their ids, in input order."""
        with self.engine.begin() as conn:
            start = conn.execute(sa.select(sa.func.count()).where(t.jobs.c.campaign == campaign)).scalar()
            conn.execute(sa.update(t.campaigns).where(t.campaigns.c.id == campaign).values(state="active"))
            return self._insert_jobs(conn, campaign, list(inputs), start=int(start or 0))

    @staticmethod
    def _insert_jobs(conn: sa.Connection, campaign: str, inputs: list[str], start: int) -> list[str]:
        now = utcnow()
        rows = [{"id": _new_id(), "campaign": campaign, "seq": start + i, "input_uri": uri, "state": "queued",
                 "attempts": 0, "updated": now} for i, uri in enumerate(inputs)]
        if rows:
            conn.execute(sa.insert(t.jobs), rows)
        return [r["id"] for r in rows]

    def get_campaign(self, campaign: str) -> dict[str, Any]:
        """The campaign row; `UsageError` naming the id when there is none."""
        with self.engine.connect() as conn:
            row = _row(conn.execute(sa.select(t.campaigns).where(t.campaigns.c.id == campaign)).first())
        if row is None:
            raise UsageError(f"campaign {campaign}: no such campaign in {self.safe_url}")
        return row

    def list_campaigns(self, limit: int = 100, offset: int = 0) -> list[dict[str, Any]]:
        """Newest first, each with `counts` ({state: n})."""
        query = sa.select(t.campaigns).order_by(t.campaigns.c.created.desc()).limit(limit).offset(offset)
        with self.engine.connect() as conn:
            rows = [dict(r._mapping) for r in conn.execute(query)]
            counts = self._counts(conn, [r["id"] for r in rows])
        for row in rows:
            row["counts"] = counts.get(row["id"], {})
        return rows

    def campaign_counts(self, campaign: str) -> dict[str, int]:
        """Number of jobs per state, every state present (zeros included)."""
        with self.engine.connect() as conn:
            found = self._counts(conn, [campaign]).get(campaign, {})
        return {state: found.get(state, 0) for state in t.JOB_STATES}

    @staticmethod
    def _counts(conn: sa.Connection, ids: list[str]) -> dict[str, dict[str, int]]:
        query = (sa.select(t.jobs.c.campaign, t.jobs.c.state, sa.func.count())
                 .where(t.jobs.c.campaign.in_(ids)).group_by(t.jobs.c.campaign, t.jobs.c.state))
        out: dict[str, dict[str, int]] = {}
        for cid, state, n in conn.execute(query):
            out.setdefault(cid, {})[state] = int(n)
        return out

    def close_campaign(self, campaign: str) -> str:
        """Mark a campaign `finished` once no job is queued or running; returns its state."""
        with self.engine.begin() as conn:
            busy = conn.execute(sa.select(sa.func.count()).where(
                t.jobs.c.campaign == campaign, t.jobs.c.state.in_(("queued", "running")))).scalar()
            state = conn.execute(sa.select(t.campaigns.c.state).where(t.campaigns.c.id == campaign)).scalar()
            if not busy and state == "active":
                conn.execute(sa.update(t.campaigns).where(t.campaigns.c.id == campaign).values(state="finished"))
                state = "finished"
        return state

    # -- jobs ------------------------------------------------------------------------------

    def list_jobs(self, campaign: str | None = None, state: str | Sequence[str] | None = None,
                  limit: int | None = None, offset: int = 0) -> list[dict[str, Any]]:
        """Jobs in input order within a campaign, newest campaign first."""
        query = (sa.select(t.jobs).join(t.campaigns, t.campaigns.c.id == t.jobs.c.campaign)
                 .order_by(t.campaigns.c.created.desc(), t.jobs.c.campaign, t.jobs.c.seq).offset(offset))
        if campaign is not None:
            query = query.where(t.jobs.c.campaign == campaign)
        if state is not None:
            query = query.where(t.jobs.c.state.in_([state] if isinstance(state, str) else list(state)))
        if limit is not None:
            query = query.limit(limit)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    def get_job(self, job_id: str) -> dict[str, Any]:
        """The job row; `UsageError` when there is none."""
        with self.engine.connect() as conn:
            row = _row(conn.execute(sa.select(t.jobs).where(t.jobs.c.id == job_id)).first())
        if row is None:
            raise UsageError(f"job {job_id}: no such job in {self.safe_url}")
        return row

    def start_attempt(self, job_id: str, worker: str | None = None, time: str | None = None) -> None:
        """One more attempt began on `worker`: attempts + 1, and `running` unless already finished."""
        time = time or utcnow()
        with self.engine.begin() as conn:
            conn.execute(sa.update(t.jobs).where(t.jobs.c.id == job_id).values(
                attempts=t.jobs.c.attempts + 1, worker=worker, started=time, updated=time))
            # an attempt event can arrive after the job's outcome: never move a finished job back
            conn.execute(sa.update(t.jobs).where(t.jobs.c.id == job_id, t.jobs.c.state == "queued")
                         .values(state="running"))

    def finish_job(self, job_id: str, state: str, *, result_uri: str | None = None, n_hits: int | None = None,
                   wall_seconds: float | None = None, error: str | None = None,
                   finished: str | None = None) -> None:
        """Record a job's outcome (`succeeded`, `skipped`, `failed` or `cancelled`)."""
        if state not in t.JOB_STATES:
            raise ValueError(f"unknown job state {state!r}")
        now = utcnow()
        with self.engine.begin() as conn:
            conn.execute(sa.update(t.jobs).where(t.jobs.c.id == job_id).values(
                state=state, result_uri=result_uri, n_hits=n_hits, wall_seconds=wall_seconds, error=error,
                finished=finished or now, updated=now))

    def requeue(self, campaign: str, states: Sequence[str]) -> list[dict[str, Any]]:
        """Put the campaign's jobs in `states` back to `queued` (error cleared); those jobs."""
        now = utcnow()
        with self.engine.begin() as conn:
            where = (t.jobs.c.campaign == campaign, t.jobs.c.state.in_(list(states)))
            ids = [r[0] for r in conn.execute(sa.select(t.jobs.c.id).where(*where))]
            conn.execute(sa.update(t.jobs).where(*where).values(state="queued", error=None, updated=now))
            conn.execute(sa.update(t.campaigns).where(t.campaigns.c.id == campaign).values(state="active"))
            rows = conn.execute(sa.select(t.jobs).where(t.jobs.c.id.in_(ids)).order_by(t.jobs.c.seq))
            return [dict(r._mapping) for r in rows]

    def cancel(self, campaign: str) -> int:
        """Cancel every queued or running job of a campaign; how many were cancelled."""
        self.get_campaign(campaign)
        now = utcnow()
        with self.engine.begin() as conn:
            n = conn.execute(sa.update(t.jobs).where(
                t.jobs.c.campaign == campaign, t.jobs.c.state.in_(("queued", "running")))
                .values(state="cancelled", finished=now, updated=now)).rowcount
            conn.execute(sa.update(t.campaigns).where(t.campaigns.c.id == campaign).values(state="cancelled"))
        return int(n)

    # -- events ----------------------------------------------------------------------------

    def record_event(self, event: Mapping[str, Any]) -> int:
        """Store one event dict (`event` kind, `time`, `job`, anything else as payload); its id."""
        body = to_jsonable(dict(event))
        job, kind, time = body.pop("job"), body.pop("event"), body.pop("time", None) or utcnow()
        with self.engine.begin() as conn:
            result = conn.execute(sa.insert(t.events).values(job=job, kind=kind, time=time, payload=body))
            return int(result.inserted_primary_key[0])

    def job_events(self, job_id: str, after_id: int = 0, limit: int = 1000) -> list[dict[str, Any]]:
        """Events of a job with id > `after_id`, oldest first (poll with the last id seen)."""
        query = (sa.select(t.events).where(t.events.c.job == job_id, t.events.c.id > after_id)
                 .order_by(t.events.c.id).limit(limit))
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    # -- results and the hits index -------------------------------------------------------

    def index_result(self, job_id: str | None, obs_name: str, algorithm: str, result_uri: str,
                     header: Mapping[str, Any], hits_df: Any) -> int:
        """Index one complete results folder (replacing an earlier index of it); rows indexed.

        `hits_df` is its info_df: `freqs` (MHz) is required; `drift_rate` (Hz/s), `snr` and
        `statistic` are taken when present.
        """
        rows = _hit_rows(obs_name, algorithm, result_uri, hits_df)
        fmin, fmax = _band_edges(header)
        now = utcnow()
        obs = {"source": _text(header.get("source_name")), "mjd": _float(header.get("tstart")),
               "band": band_of(fmin, fmax), "fmin_mhz": fmin, "fmax_mhz": fmax, "updated": now}
        with self.engine.begin() as conn:
            exists = conn.execute(sa.select(t.observations.c.obs_name)
                                  .where(t.observations.c.obs_name == obs_name)).first()
            if exists:
                conn.execute(sa.update(t.observations).where(t.observations.c.obs_name == obs_name).values(**obs))
            else:
                conn.execute(sa.insert(t.observations).values(obs_name=obs_name, n_hits=0, **obs))
            key = (t.results.c.obs_name == obs_name, t.results.c.algorithm == algorithm)
            old = conn.execute(sa.select(t.results.c.result_uri).where(*key)).scalar()
            conn.execute(sa.delete(t.results).where(*key))
            conn.execute(sa.delete(t.hits).where(t.hits.c.result_uri.in_({result_uri, old or result_uri})))
            conn.execute(sa.insert(t.results).values(obs_name=obs_name, algorithm=algorithm, result_uri=result_uri,
                                                     n_hits=len(rows), job=job_id, finished=now))
            if rows:
                conn.execute(sa.insert(t.hits), rows)
            total = conn.execute(sa.select(sa.func.sum(t.results.c.n_hits))
                                 .where(t.results.c.obs_name == obs_name)).scalar()
            conn.execute(sa.update(t.observations).where(t.observations.c.obs_name == obs_name)
                         .values(n_hits=int(total or 0)))
        return len(rows)

    def query_hits(self, *, fmin: float | None = None, fmax: float | None = None, min_snr: float | None = None,
                   min_statistic: float | None = None, algorithm: str | None = None,
                   observation: str | None = None, drift_min: float | None = None, drift_max: float | None = None,
                   limit: int = 100, offset: int = 0) -> list[dict[str, Any]]:
        """Hits across every indexed observation, by frequency (MHz) then id; filters are inclusive."""
        c = t.hits.c
        conditions = [cond for value, cond in (
            (fmin, lambda v: c.frequency_mhz >= v), (fmax, lambda v: c.frequency_mhz <= v),
            (min_snr, lambda v: c.snr >= v), (min_statistic, lambda v: c.statistic >= v),
            (algorithm, lambda v: c.algorithm == v), (observation, lambda v: c.observation == v),
            (drift_min, lambda v: c.drift_rate >= v), (drift_max, lambda v: c.drift_rate <= v),
        ) if value is not None for cond in [cond(value)]]
        query = (sa.select(t.hits).where(*conditions).order_by(c.frequency_mhz, c.id).limit(limit).offset(offset))
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    def list_observations(self, search: str | None = None, sort: str = "obs_name", descending: bool = False,
                          limit: int = 50, offset: int = 0) -> list[dict[str, Any]]:
        """One page of observations (indexed query), each with `algorithms` and `hits` ({alg: n})."""
        column = _OBS_SORTS.get(sort)
        if column is None:
            raise UsageError(f"sort must be one of {', '.join(_OBS_SORTS)}, not {sort!r}")
        order = column.desc() if descending else column.asc()
        query = (sa.select(t.observations).where(*_obs_search(search))
                 .order_by(order, t.observations.c.obs_name).limit(limit).offset(offset))
        with self.engine.connect() as conn:
            rows = [dict(r._mapping) for r in conn.execute(query)]
            per_obs = self._results_of(conn, [r["obs_name"] for r in rows])
        for row in rows:
            found = per_obs.get(row["obs_name"], [])
            row["algorithms"] = [r["algorithm"] for r in found]
            row["hits"] = {r["algorithm"]: r["n_hits"] for r in found}
        return rows

    def count_observations(self, search: str | None = None) -> int:
        with self.engine.connect() as conn:
            query = sa.select(sa.func.count()).select_from(t.observations).where(*_obs_search(search))
            return int(conn.execute(query).scalar() or 0)

    def get_observation(self, obs_name: str) -> dict[str, Any] | None:
        """The observation row with `results`: one dict per algorithm (result_uri, n_hits, job)."""
        with self.engine.connect() as conn:
            row = _row(conn.execute(sa.select(t.observations).where(t.observations.c.obs_name == obs_name)).first())
            if row is not None:
                row["results"] = self._results_of(conn, [obs_name]).get(obs_name, [])
        return row

    @staticmethod
    def _results_of(conn: sa.Connection, names: list[str]) -> dict[str, list[dict[str, Any]]]:
        out: dict[str, list[dict[str, Any]]] = {}
        query = sa.select(t.results).where(t.results.c.obs_name.in_(names)).order_by(t.results.c.algorithm)
        for r in conn.execute(query):
            out.setdefault(r.obs_name, []).append(dict(r._mapping))
        return out


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


def _obs_search(search: str | None) -> list[Any]:
    if not search:
        return []
    pattern = f"%{search.lower()}%"
    return [sa.or_(sa.func.lower(t.observations.c.obs_name).like(pattern),
                   sa.func.lower(t.observations.c.source).like(pattern))]


def _float(value: Any) -> float | None:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if out == out else None  # NaN -> None


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _band_edges(header: Mapping[str, Any]) -> tuple[float | None, float | None]:
    fch1, foff, nchans = _float(header.get("fch1")), _float(header.get("foff")), _float(header.get("nchans"))
    if fch1 is None or foff is None or nchans is None:
        return None, None
    other = fch1 + foff * nchans
    return min(fch1, other), max(fch1, other)


def _hit_rows(obs_name: str, algorithm: str, result_uri: str, hits_df: Any) -> list[dict[str, Any]]:
    if "freqs" not in hits_df.columns:
        raise UsageError(f"{result_uri}: info_df has no freqs column to index")
    columns = {name: (hits_df[name].tolist() if name in hits_df.columns else [None] * len(hits_df))
               for name in ("freqs", "drift_rate", "snr", "statistic")}
    return [{"observation": obs_name, "algorithm": algorithm, "frequency_mhz": float(f),
             "drift_rate": _float(d), "snr": _float(s), "statistic": _float(st),
             "result_uri": result_uri, "row": i}
            for i, (f, d, s, st) in enumerate(zip(columns["freqs"], columns["drift_rate"], columns["snr"],
                                                  columns["statistic"]))]
