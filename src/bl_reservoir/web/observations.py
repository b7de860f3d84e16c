"""Observations, their results and hits, as both the JSON API and the pages present them.

Lists come from the hits index (fast at any size); one observation's details and
pictures come from its results folders in the bucket, read without unpickling.
"""

from __future__ import annotations

from typing import Any

from bl_reservoir.results import to_jsonable
from bl_reservoir.web import hits as hit_table
from bl_reservoir.web import pictures
from bl_reservoir.web.bucket import Bucket, NotInBucket, ResultRef, check_names

#: Header fields shown first (the rest follow in the file's order).
HEADER_FIELDS = ("source_name", "telescope_id", "machine_id", "tstart", "src_raj", "src_dej", "fch1", "foff",
                 "nchans", "tsamp", "nifs", "nbits")
_MANIFEST_FIELDS = ("algorithm", "parameters", "input", "started_at", "finished_at", "wall_seconds", "n_hits",
                    "host")


def list_observations(state: Any, search: str | None, sort: str, descending: bool, limit: int,
                      offset: int) -> dict[str, Any]:
    """One page of the indexed observations, with the total matching `search`."""
    index = state.index
    items = index.list_observations(search=search or None, sort=sort, descending=descending, limit=limit,
                                    offset=offset)
    return {"total": index.count_observations(search or None), "offset": offset, "limit": limit,
            "items": [to_jsonable(i) for i in items], "indexing": state.indexing}


def result(state: Any, obs: str, package: str, name: str) -> tuple[Bucket, ResultRef, dict[str, Any], str]:
    """(bucket, ref, manifest, manifest digest) of one complete result; `NotInBucket` otherwise."""
    bucket, ref = state.locate(obs, package, name)
    manifest, version = bucket.manifest(ref)
    return bucket, ref, manifest, version


def observation(state: Any, obs: str) -> dict[str, Any]:
    """Header and one entry per algorithm result (index first, bucket listing as a fallback)."""
    check_names(obs)
    row = state.index.get_observation(obs)
    if row is not None:
        algorithms = [r["algorithm"] for r in row.get("results", [])]
    else:
        algorithms = [ref.algorithm for ref in state.bucket.results_of(obs)]
    results, header = [], None
    for algorithm in algorithms:
        package, _, name = algorithm.partition("/")
        try:
            bucket, ref, manifest, version = result(state, obs, package, name)
        except NotInBucket:
            continue  # indexed, but taken down from the bucket since
        header = header or bucket.header(ref, version)
        hits = bucket.hits(ref, version)
        results.append({"algorithm": algorithm, "package": package, "name": name,
                        "result_uri": bucket.result_uri(ref), "n_hits": len(hits),
                        "columns": list(map(str, hits.columns)), "strength": hit_table.strength_column(hits),
                        "manifest": {k: manifest.get(k) for k in _MANIFEST_FIELDS}})
    if not results:
        raise NotInBucket(obs)
    ordered = {k: header[k] for k in HEADER_FIELDS if k in header}
    ordered.update({k: v for k, v in header.items() if k not in ordered})
    summary = {k: row.get(k) for k in ("source", "mjd", "band", "fmin_mhz", "fmax_mhz")} if row else {}
    return to_jsonable({"obs_name": obs, "header": ordered, "summary": summary, "results": results})


def hits_page(state: Any, obs: str, package: str, name: str, where: hit_table.HitFilter,
              sort: str | None, descending: bool, limit: int, offset: int) -> dict[str, Any]:
    """One filtered, sorted page of a result's hits table."""
    bucket, ref, _, version = result(state, obs, package, name)
    frame = bucket.hits(ref, version)
    total, rows = hit_table.select(frame, where, sort, descending, limit, offset)
    return {"obs_name": obs, "algorithm": ref.algorithm, "n_hits": len(frame), "total": total, "offset": offset,
            "limit": limit, "columns": ["i", *map(str, frame.columns)], "items": rows}


def hit(state: Any, obs: str, package: str, name: str, i: int) -> dict[str, Any]:
    """Every field of hit `i`, its neighbours, and the same signal found by other algorithms."""
    bucket, ref, _, version = result(state, obs, package, name)
    frame = bucket.hits(ref, version)
    if not 0 <= i < len(frame):
        raise NotInBucket(f"{ref}: no hit {i}")
    fields = hit_table.records(frame, [i])[0]
    header = bucket.header(ref, version)
    others = []
    if fields.get("freqs") is not None:
        tol = hit_table.match_tolerance_mhz(fields, header)
        for found in state.index.query_hits(observation=obs, fmin=fields["freqs"] - tol,
                                            fmax=fields["freqs"] + tol, limit=50):
            if found["algorithm"] != ref.algorithm:
                others.append({"algorithm": found["algorithm"], "i": found["row"],
                               "frequency_mhz": found["frequency_mhz"], "snr": found["snr"],
                               "statistic": found["statistic"], "drift_rate": found["drift_rate"]})
    return {"obs_name": obs, "algorithm": ref.algorithm, "package": package, "name": name, "i": i,
            "n_hits": len(frame), "prev": i - 1 if i > 0 else None, "next": i + 1 if i + 1 < len(frame) else None,
            "fields": fields, "others": others, "source": header.get("source_name")}


def hit_picture(state: Any, obs: str, package: str, name: str, i: int, size: str) -> tuple[bytes, str]:
    """(PNG bytes, ETag) of hit `i`: `full` waterfall or `thumb` thumbnail."""
    bucket, ref, _, version = result(state, obs, package, name)
    etag = f'"{version}-{i}-{size}"'

    def render() -> bytes:
        frame = bucket.hits(ref, version)
        if not 0 <= i < len(frame):
            raise NotInBucket(f"{ref}: no hit {i}")
        record = hit_table.records(frame, [i])[0]
        stamp = bucket.stamp(ref, i)
        draw = pictures.thumbnail_png if size == "thumb" else state.renderer.waterfall
        return draw(stamp, bucket.header(ref, version), record)

    return state.pictures.get((bucket.uri, ref, version, i, size), render), etag


def overview_picture(state: Any, obs: str, package: str, name: str) -> tuple[bytes, str]:
    """(PNG bytes, ETag) of a result's hits across the band."""
    bucket, ref, _, version = result(state, obs, package, name)

    def render() -> bytes:
        return pictures.overview_png(bucket.hits(ref, version), bucket.header(ref, version))

    return state.pictures.get((bucket.uri, ref, version, "overview"), render), f'"{version}-overview"'


def search_hits(state: Any, **filters: Any) -> list[dict[str, Any]]:
    """Hits across observations from the hits index, each with its page's path."""
    rows = state.index.query_hits(**filters)
    for row in rows:
        package, _, name = row["algorithm"].partition("/")
        row["package"], row["name"] = package, name
    return [to_jsonable(r) for r in rows]
