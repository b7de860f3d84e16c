"""The hits index: every observation with a result, each result folder, and each hit, for queries
across the whole archive (the front end's lists and searches) without opening the bucket.

    index = HitIndex(url)                                # None: settings.db_url()
    index.index_result(job_id, obs_name, algorithm, result_uri, header, hits_df)
    index.query_hits(fmin=, fmax=, min_snr=, min_statistic=, algorithm=, observation=,
                     drift_min=, drift_max=, limit=, offset=)   # MHz, Hz/s
    index.list_observations(search=, sort=, descending=, limit=, offset=), count_observations(search)
    index.get_observation(obs_name) -> header summary + results per algorithm
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from bl_reservoir.errors import UsageError
from bl_reservoir.io.header import band_edges
from bl_reservoir.results import utcnow
from bl_reservoir.scale import schema as t
from bl_reservoir.scale.database import Database, as_dict, as_dicts

log = logging.getLogger(__name__)
#: Receiver bands by centre frequency (MHz), as BL names them.
_BANDS = (("L", 1100.0, 1900.0), ("S", 1800.0, 2800.0), ("C", 3900.0, 8000.0), ("X", 7800.0, 11600.0),
          ("Ku", 11600.0, 18000.0))
#: The info_df columns the index keeps of each hit (`freqs` required, the others when present).
INDEXED_COLUMNS = ("freqs", "drift_rate", "snr", "statistic")
_OBS_SORTS = {"obs_name": t.observations.c.obs_name, "source": t.observations.c.source,
              "mjd": t.observations.c.mjd, "n_hits": t.observations.c.n_hits,
              "updated": t.observations.c.updated, "band": t.observations.c.band}


def read_for_index(result_uri: str) -> tuple[dict[str, Any], Any]:
    """(header, the hits' INDEXED_COLUMNS) of a complete result folder at any URI, read without pickles."""
    from bl_reservoir.results import read_results

    found = read_results(result_uri, stamps=False)
    return found.header, found.hits[[c for c in INDEXED_COLUMNS if c in found.hits.columns]]


def band_of(fmin_mhz: float | None, fmax_mhz: float | None) -> str | None:
    """Receiver band letter of a frequency range (MHz), by its centre; None when outside them all."""
    if fmin_mhz is None or fmax_mhz is None:
        return None
    centre = (fmin_mhz + fmax_mhz) / 2
    return next((name for name, lo, hi in _BANDS if lo <= centre < hi), None)


class HitIndex(Database):
    """Observations, result folders and hits of one database."""

    def index_result(self, job_id: str | None, obs_name: str, algorithm: str, result_uri: str,
                     header: Mapping[str, Any], hits_df: Any) -> int:
        """Index one complete results folder (replacing an earlier index of it); rows indexed.

        `hits_df` is its info_df: `freqs` (MHz) is required; `drift_rate` (Hz/s), `snr` and
        `statistic` are taken when present. One job's bad data never raises: a number that is not
        finite is indexed as None, a hit without a finite frequency is left out, with a warning.
        """
        header = header if isinstance(header, Mapping) else {}
        rows, left_out = _hit_rows(obs_name, algorithm, result_uri, hits_df)
        if left_out:
            log.warning("%s: %d of %d hits not indexed (no finite freqs)", result_uri, left_out, len(hits_df))
        fmin, fmax = band_edges(header) or (None, None)
        if fmin is None and {"fch1", "foff", "nchans"} <= set(header):
            log.warning("%s: band not indexed (fch1 %r, foff %r, nchans %r)", result_uri, header.get("fch1"),
                        header.get("foff"), header.get("nchans"))
        now = utcnow()
        obs = {"source": _text(header.get("source_name"), t.observations.c.source),
               "mjd": _float(header.get("tstart")),
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
        """Hits across every indexed observation, by frequency (MHz) then id; filters are inclusive. An SNR
        bound applies to hits with an SNR, a statistic bound to hits with a statistic: given both, either
        qualifies (no hit has both kinds, so requiring both would match nothing)."""
        c = t.hits.c
        conditions = [cond for value, cond in (
            (fmin, lambda v: c.frequency_mhz >= v), (fmax, lambda v: c.frequency_mhz <= v),
            (algorithm, lambda v: c.algorithm == v), (observation, lambda v: c.observation == v),
            (drift_min, lambda v: c.drift_rate >= v), (drift_max, lambda v: c.drift_rate <= v),
        ) if value is not None for cond in [cond(value)]]
        strength = [column >= value for value, column in ((min_snr, c.snr), (min_statistic, c.statistic))
                    if value is not None]
        if strength:
            conditions.append(sa.or_(*strength))
        query = (sa.select(t.hits).where(*conditions).order_by(c.frequency_mhz, c.id).limit(limit).offset(offset))
        with self.engine.connect() as conn:
            return as_dicts(conn.execute(query))

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
            rows = as_dicts(conn.execute(query))
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
            row = as_dict(conn.execute(sa.select(t.observations).where(t.observations.c.obs_name == obs_name)).first())
            if row is not None:
                row["results"] = self._results_of(conn, [obs_name]).get(obs_name, [])
        return row

    def results_of(self, obs_names: list[str]) -> dict[str, list[dict[str, Any]]]:
        """The result rows (algorithm, result_uri, n_hits, job) of each named observation, by name."""
        with self.engine.connect() as conn:
            return self._results_of(conn, list(obs_names))

    @staticmethod
    def _results_of(conn: sa.Connection, names: list[str]) -> dict[str, list[dict[str, Any]]]:
        out: dict[str, list[dict[str, Any]]] = {}
        query = sa.select(t.results).where(t.results.c.obs_name.in_(names)).order_by(t.results.c.algorithm)
        for r in conn.execute(query):
            out.setdefault(r.obs_name, []).append(as_dict(r))
        return out


def _obs_search(search: str | None) -> list[Any]:
    if not search:
        return []
    pattern = f"%{search.lower()}%"
    return [sa.or_(sa.func.lower(t.observations.c.obs_name).like(pattern),
                   sa.func.lower(t.observations.c.source).like(pattern))]


def _float(value: Any) -> float | None:
    """`value` as a finite float; None for anything else (NaN, infinities, text, overflowing integers)."""
    try:
        out = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return out if math.isfinite(out) else None


def _text(value: Any, column: sa.Column) -> str | None:
    """`value` as text that fits `column` (PostgreSQL refuses a longer one; SQLite would keep it)."""
    return None if value is None else str(value)[: column.type.length]


def _hit_rows(obs_name: str, algorithm: str, result_uri: str, hits_df: Any) -> tuple[list[dict[str, Any]], int]:
    """(rows of the hits table, how many hits were left out for want of a finite frequency)."""
    if "freqs" not in hits_df.columns:
        return [], len(hits_df)
    columns = {name: (hits_df[name].tolist() if name in hits_df.columns else [None] * len(hits_df))
               for name in INDEXED_COLUMNS}
    rows = [{"observation": obs_name, "algorithm": algorithm, "frequency_mhz": _float(f),
             "drift_rate": _float(d), "snr": _float(s), "statistic": _float(st),
             "result_uri": result_uri, "row": i}
            for i, (f, d, s, st) in enumerate(zip(columns["freqs"], columns["drift_rate"], columns["snr"],
                                                  columns["statistic"]))]
    kept = [row for row in rows if row["frequency_mhz"] is not None]
    return kept, len(rows) - len(kept)
