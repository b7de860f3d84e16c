"""Cadences and their candidate events, as both the JSON API and the pages present them.

Lists and events come from the cadence store; pictures are the events stage's PNGs in the bucket
(`<bucket>/cadences/<id>/events/event_NNN.png`), read by safe names and cached in memory.
"""

from __future__ import annotations

import hashlib
from typing import Any

from bl_reservoir.results import to_jsonable
from bl_reservoir.storage import CADENCES
from bl_reservoir.web.bucket import NotInBucket, check_names

#: The algorithm whose results an event's hits are rows of.
_PACKAGE, _NAME = "dedoppler", "search"


def list_cadences(state: Any, limit: int, offset: int) -> dict[str, Any]:
    """One page of cadences, newest first: target, MJD, band, files, events, state."""
    store = state.cadences
    items = [_summary(row) for row in store.list_cadences(limit=limit, offset=offset)]
    return {"total": store.count_cadences(), "offset": offset, "limit": limit, "items": items}


def _summary(row: dict[str, Any]) -> dict[str, Any]:
    keep = ("id", "target", "mjd", "band", "fmin_mhz", "fmax_mhz", "n_files", "n_events", "state", "error",
            "campaign", "updated")
    return to_jsonable({k: row.get(k) for k in keep})


def cadence(state: Any, cadence_id: str) -> dict[str, Any]:
    """The cadence: its six observations (ON/OFF, links) and each event with its picture and its hits."""
    check_names(cadence_id)
    row = state.cadences.get_cadence(cadence_id)
    if row is None:
        raise NotInBucket(cadence_id)
    indexed = {m["obs_name"]: state.index.get_observation(m["obs_name"]) for m in row["members"]}
    members = [{"position": m["position"], "on": m["on"], "obs_name": m["obs_name"], "input_uri": m["input_uri"],
                "job": m["job"], "source": (indexed[m["obs_name"]] or {}).get("source"),
                "mjd": (indexed[m["obs_name"]] or {}).get("mjd"), "indexed": indexed[m["obs_name"]] is not None}
               for m in row["members"]]
    events = []
    for event in row["events"]:
        hits = [{**h, "package": _PACKAGE, "name": _NAME, "on": True} for h in event["hits"]]
        events.append({**{k: event[k] for k in ("n", "frequency_mhz", "drift_rate", "snr", "n_ons")},
                       "picture": f"/api/cadences/{cadence_id}/events/{event['n']}.png" if event["picture"] else None,
                       "hits": hits})
    return to_jsonable({**_summary({**row, "n_files": len(members)}), "bucket": row["bucket"],
                        "events_uri": row["events_uri"], "parameters": row["parameters"], "members": members,
                        "events": events})


def event_picture(state: Any, cadence_id: str, n: int) -> tuple[bytes, str]:
    """(PNG bytes, ETag) of event `n`'s stacked ON/OFF waterfall."""
    check_names(cadence_id)
    row = state.cadences.get_cadence(cadence_id)
    event = next((e for e in (row or {}).get("events", []) if e["n"] == n), None)
    if event is None or not event["picture"]:
        raise NotInBucket(f"{cadence_id}: no event {n}")
    bucket = state.bucket_at(row["bucket"])
    version = hashlib.sha1(f"{row['updated']}|{row['events_uri']}".encode()).hexdigest()[:16]

    def read() -> bytes:
        return bucket.read(CADENCES, cadence_id, "events", event["picture"])

    return state.pictures.get((bucket.uri, CADENCES, cadence_id, version, n), read), f'"{version}-{n}"'


def cadences_of(state: Any, obs_name: str) -> list[str]:
    """The cadences an observation belongs to (for links from its pages)."""
    return state.cadences.of_observation(obs_name)
