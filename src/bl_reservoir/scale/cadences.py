"""The cadence store: each cadence (C8), its six observations and their jobs, the state of its events
stage, and its candidate events with the hits they join, for queries across the archive.

    cadences = CadenceStore(url)                          # None: settings.db_url()
    cadences.add(campaign, bucket, [Cadence...], jobs={input_uri: job_id}, parameters={...})
    cadences.settle(campaign) -> [cadence ids whose six jobs succeeded, claimed to run once]
    cadences.start(id), cadences.finish(id, state, n_events=, events_uri=, error=, events=)
    cadences.list_cadences(limit, offset, campaign=), count_cadences(campaign=)
    cadences.get_cadence(id) -> row + members + events (each with its hits), or None
    cadences.of_observation(obs_name) -> [cadence ids]
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from bl_reservoir.io.cadence import ON_POSITIONS, Cadence
from bl_reservoir.results import to_jsonable, utcnow
from bl_reservoir.scale import schema as t
from bl_reservoir.scale.database import Database, as_dict, as_dicts
from bl_reservoir.scale.index import band_of


class CadenceStore(Database):
    """Cadences, their members and their events, in one database with the job store."""

    def add(self, campaign: str, bucket: str, cadences: Iterable[Cadence], *, jobs: Mapping[str, str],
            parameters: Mapping[str, Any]) -> list[str]:
        """Record the cadences of a campaign, `waiting` for their jobs (`jobs`: input URI -> job id); a
        cadence staged before (another campaign) is taken over, its old events dropped. Their ids."""
        now = utcnow()
        ids = []
        with self.engine.begin() as conn:
            for cadence in cadences:
                fmin, fmax = cadence.band
                row = {"campaign": campaign, "target": cadence.target or None,
                       "mjd": cadence.members[0].tstart or None, "band": band_of(fmin, fmax) if fmax else None,
                       "fmin_mhz": fmin or None, "fmax_mhz": fmax or None, "bucket": bucket,
                       "parameters": to_jsonable(dict(parameters)), "state": "waiting", "error": None,
                       "n_events": None, "events_uri": None, "updated": now}
                self._drop_events(conn, cadence.id)
                conn.execute(sa.delete(t.cadence_members).where(t.cadence_members.c.cadence == cadence.id))
                if conn.execute(sa.select(t.cadences.c.id).where(t.cadences.c.id == cadence.id)).first():
                    conn.execute(sa.update(t.cadences).where(t.cadences.c.id == cadence.id).values(**row))
                else:
                    conn.execute(sa.insert(t.cadences).values(id=cadence.id, **row))
                conn.execute(sa.insert(t.cadence_members), [
                    {"cadence": cadence.id, "position": k, "obs_name": member.name, "input_uri": member.key,
                     "job": jobs.get(member.key)} for k, member in enumerate(cadence.members)])
                ids.append(cadence.id)
        return ids

    @staticmethod
    def _drop_events(conn: sa.Connection, cadence: str) -> None:
        conn.execute(sa.delete(t.cadence_event_hits).where(t.cadence_event_hits.c.cadence == cadence))
        conn.execute(sa.delete(t.cadence_events).where(t.cadence_events.c.cadence == cadence))

    def settle(self, campaign: str) -> list[str]:
        """Move the campaign's waiting cadences on once their six jobs have ended: `failed` (saying which
        job) when one did not succeed, else `queued`. Returns the queued ones: each id is returned to
        one caller only (a compare-and-set), so concurrent callers never run a stage twice."""
        ready = []
        with self.engine.begin() as conn:
            waiting = [r[0] for r in conn.execute(sa.select(t.cadences.c.id).where(
                t.cadences.c.campaign == campaign, t.cadences.c.state == "waiting"))]
            for cadence in waiting:
                members = conn.execute(
                    sa.select(t.cadence_members.c.input_uri, t.jobs.c.state, t.jobs.c.error)
                    .select_from(t.cadence_members.outerjoin(t.jobs, t.jobs.c.id == t.cadence_members.c.job))
                    .where(t.cadence_members.c.cadence == cadence).order_by(t.cadence_members.c.position)).all()
                if any(state in t.ACTIVE for _, state, _ in members):
                    continue
                bad = next(((uri, state, error) for uri, state, error in members if state not in t.SUCCEEDED), None)
                values = {"state": "queued", "updated": utcnow()}
                if bad is not None:
                    uri, state, error = bad
                    values = {"state": "failed", "updated": utcnow(),
                              "error": f"{uri}: its dedoppler job {'is missing' if state is None else state}"
                                       + (f" ({error})" if error else "")}
                claimed = conn.execute(sa.update(t.cadences).where(
                    t.cadences.c.id == cadence, t.cadences.c.state == "waiting").values(**values)).rowcount
                if claimed and bad is None:
                    ready.append(cadence)
        return ready

    def requeue(self, campaign: str, states: Sequence[str]) -> int:
        """Put the campaign's cadences in `states` back to `waiting` (resume, retry); how many."""
        with self.engine.begin() as conn:
            return int(conn.execute(sa.update(t.cadences).where(
                t.cadences.c.campaign == campaign, t.cadences.c.state.in_(list(states)))
                .values(state="waiting", error=None, updated=utcnow())).rowcount)

    def start(self, cadence: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(sa.update(t.cadences).where(t.cadences.c.id == cadence)
                         .values(state="running", updated=utcnow()))

    def finish(self, cadence: str, state: str, *, n_events: int | None = None, events_uri: str | None = None,
               error: str | None = None, events: Sequence[Mapping[str, Any]] = ()) -> None:
        """Record the stage's outcome and, when it succeeded, its events (each with `hits`), replacing any before."""
        if state not in t.CADENCE_STATES:
            raise ValueError(f"unknown cadence state {state!r}")
        with self.engine.begin() as conn:
            self._drop_events(conn, cadence)
            conn.execute(sa.update(t.cadences).where(t.cadences.c.id == cadence).values(
                state=state, n_events=n_events, events_uri=events_uri, error=error, updated=utcnow()))
            rows = [{"cadence": cadence, **{k: e[k] for k in ("n", "frequency_mhz", "drift_rate", "snr", "n_ons",
                                                                "picture")}} for e in events]
            hits = [{"cadence": cadence, "n": e["n"], **h} for e in events for h in e["hits"]]
            if rows:
                conn.execute(sa.insert(t.cadence_events), rows)
            if hits:
                conn.execute(sa.insert(t.cadence_event_hits), hits)

    # -- queries --------------------------------------------------------------------------

    def list_cadences(self, limit: int = 50, offset: int = 0, campaign: str | None = None) -> list[dict[str, Any]]:
        """Newest first (by MJD), each with `n_files`."""
        query = (sa.select(t.cadences).where(*self._of(campaign))
                 .order_by(t.cadences.c.mjd.desc(), t.cadences.c.id).limit(limit).offset(offset))
        with self.engine.connect() as conn:
            rows = as_dicts(conn.execute(query))
            counts = dict(conn.execute(sa.select(t.cadence_members.c.cadence, sa.func.count())
                                       .where(t.cadence_members.c.cadence.in_([r["id"] for r in rows]))
                                       .group_by(t.cadence_members.c.cadence)).all())
        for row in rows:
            row["n_files"] = int(counts.get(row["id"], 0))
        return rows

    def count_cadences(self, campaign: str | None = None, state: str | None = None) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(t.cadences)
                                    .where(*self._of(campaign, state))).scalar() or 0)

    @staticmethod
    def _of(campaign: str | None, state: str | None = None) -> list[Any]:
        return [c for value, c in ((campaign, t.cadences.c.campaign == campaign),
                                   (state, t.cadences.c.state == state)) if value is not None]

    def get_cadence(self, cadence: str) -> dict[str, Any] | None:
        """The cadence with `members` (position, obs_name, input_uri, job, on) and `events` (each with `hits`)."""
        with self.engine.connect() as conn:
            row = as_dict(conn.execute(sa.select(t.cadences).where(t.cadences.c.id == cadence)).first())
            if row is None:
                return None
            row["members"] = as_dicts(conn.execute(sa.select(t.cadence_members).where(
                t.cadence_members.c.cadence == cadence).order_by(t.cadence_members.c.position)))
            events = as_dicts(conn.execute(sa.select(t.cadence_events).where(
                t.cadence_events.c.cadence == cadence).order_by(t.cadence_events.c.n)))
            hits = as_dicts(conn.execute(sa.select(t.cadence_event_hits).where(
                t.cadence_event_hits.c.cadence == cadence).order_by(t.cadence_event_hits.c.n,
                                                                    t.cadence_event_hits.c.position)))
        for member in row["members"]:
            member["on"] = member["position"] in ON_POSITIONS
        for event in events:
            event["hits"] = [h for h in hits if h["n"] == event["n"]]
        row["events"] = events
        return row

    def of_observation(self, obs_name: str) -> list[str]:
        """Ids of the cadences an observation belongs to."""
        with self.engine.connect() as conn:
            return [r[0] for r in conn.execute(sa.select(t.cadence_members.c.cadence)
                                               .where(t.cadence_members.c.obs_name == obs_name)
                                               .order_by(t.cadence_members.c.cadence))]
