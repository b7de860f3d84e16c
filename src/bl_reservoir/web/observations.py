"""Observations, their results and hits, as both the JSON API and the pages present them.

Lists come from the hits index (fast at any size); one observation's details and
pictures come from its results folders in the bucket, read without unpickling.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from bl_reservoir.results import HEADER_JSON, to_jsonable
from bl_reservoir.web import downloads, pictures
from bl_reservoir.web import hits as hit_table
from bl_reservoir.web.bucket import Bucket, NotInBucket, ResultRef, check_names

#: Header fields shown first (the rest follow in the file's order).
HEADER_FIELDS = ("source_name", "telescope_id", "machine_id", "tstart", "src_raj", "src_dej", "fch1", "foff",
                 "nchans", "tsamp", "nifs", "nbits")
#: SIGPROC `telescope_id`s (0 is "fake": no telescope). Unknown ids show as `telescope <id>`.
TELESCOPES = {1: "Arecibo", 2: "Ooty", 3: "Nancay", 4: "Parkes", 5: "Jodrell Bank", 6: "GBT", 7: "GMRT",
              8: "Effelsberg", 9: "ATA", 10: "SRT", 11: "LOFAR", 12: "VLA", 64: "MeerKAT", 65: "KAT-7"}
#: For headers without a telescope id: the telescope by the prefix BL gives its observation names.
_NAME_PREFIXES = {"GBT": "GBT", "BLC": "GBT", "PKS": "Parkes", "PARKES": "Parkes", "MK": "MeerKAT",
                  "MEERKAT": "MeerKAT", "ATA": "ATA", "VLA": "VLA", "FAST": "FAST"}
_MANIFEST_FIELDS = ("algorithm", "parameters", "input", "started_at", "finished_at", "wall_seconds", "n_hits",
                    "host")


def telescope_of(header: Mapping[str, Any] | None, obs_name: str) -> str | None:
    """The telescope from the header's SIGPROC `telescope_id`; from the observation's name only when the
    header has no id (or 0, "fake")."""
    raw = (header or {}).get("telescope_id")
    try:
        tid = int(raw) if raw is not None and not isinstance(raw, bool) else 0
    except (TypeError, ValueError):
        tid = 0
    if tid:
        return TELESCOPES.get(tid, f"telescope {tid}")
    return _NAME_PREFIXES.get(obs_name.split("_", 1)[0].upper())


def list_observations(state: Any, search: str | None, sort: str, descending: bool, limit: int,
                      offset: int) -> dict[str, Any]:
    """One page of the indexed observations, with the total matching `search`."""
    index = state.index
    items = index.list_observations(search=search or None, sort=sort, descending=descending, limit=limit,
                                    offset=offset)
    found = telescopes(state, items)
    for item in items:
        item["telescope"] = found.get(item["obs_name"])
    return {"total": index.count_observations(search or None), "offset": offset, "limit": limit,
            "items": [to_jsonable(i) for i in items], "indexing": state.indexing}


def telescopes(state: Any, items: list[dict[str, Any]]) -> dict[str, str | None]:
    """The telescope of each listed observation, from the `header.json` of one of its results: read once
    per indexed version of the observation, all of a page's at once (one batch per bucket)."""
    out, wanted = {}, {}
    for item in items:
        key = (item["obs_name"], item.get("updated"))
        known = state.telescopes.get(key)
        if known is not None:
            out[item["obs_name"]] = known[0]
        else:
            wanted[item["obs_name"]] = key
    paths: dict[Bucket, dict[str, str]] = {}
    for obs, results in state.index.results_of(list(wanted)).items():
        try:
            package, _, name = results[0]["algorithm"].partition("/")
            bucket, ref = state.locate(obs, package, name, results)
        except (NotInBucket, IndexError):
            continue
        path = bucket.fs._strip_protocol(bucket.path(ref.obs, ref.package, ref.name, HEADER_JSON))
        paths.setdefault(bucket, {})[path] = obs
    headers: dict[str, Any] = {}
    for bucket, names in paths.items():
        try:
            found = bucket.fs.cat(list(names), on_error="omit")
        except OSError:
            found = {}
        for path, raw in found.items():
            try:
                headers[names[bucket.fs._strip_protocol(path)]] = json.loads(raw)
            except (ValueError, KeyError):
                pass
    for obs, key in wanted.items():
        header = headers.get(obs)
        out[obs] = telescope_of(header if isinstance(header, dict) else None, obs)
        state.telescopes.put(key, (out[obs],))
    return out


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
                        "manifest": {k: manifest.get(k) for k in _MANIFEST_FIELDS},
                        "downloads": downloads.links(ref, manifest, hits)})
    if not results:
        raise NotInBucket(obs)
    ordered = {k: header[k] for k in HEADER_FIELDS if k in header}
    ordered.update({k: v for k, v in header.items() if k not in ordered})
    summary = {k: row.get(k) for k in ("source", "mjd", "band", "fmin_mhz", "fmax_mhz")} if row else {}
    summary["telescope"] = telescope_of(header, obs)
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
    """(PNG bytes, ETag) of hit `i`: `full` waterfall or `thumb` thumbnail, of at most `pictures.MAX_COLUMNS`
    columns around the hit's track (`pictures.PictureTooLarge` for a stamp too tall to draw)."""
    bucket, ref, _, version = result(state, obs, package, name)
    etag = f'"{version}-{i}-{size}"'

    def render() -> bytes:
        frame = bucket.hits(ref, version)
        if not 0 <= i < len(frame):
            raise NotInBucket(f"{ref}: no hit {i}")
        header = bucket.header(ref, version)
        window = pictures.StampWindow(header, hit_table.records(frame, [i])[0])
        stamp = bucket.stamp(ref, i, window=window)   # only the columns the picture shows
        draw = pictures.thumbnail_png if size == "thumb" else state.renderer.waterfall
        return draw(stamp, header, window.hit)

    return state.pictures.get((bucket.uri, ref, version, i, size), render), etag


def overview_picture(state: Any, obs: str, package: str, name: str) -> tuple[bytes, str]:
    """(PNG bytes, ETag) of a result's hits across the band."""
    bucket, ref, _, version = result(state, obs, package, name)

    def render() -> bytes:
        return pictures.overview_png(bucket.hits(ref, version), bucket.header(ref, version))

    return state.pictures.get((bucket.uri, ref, version, "overview"), render), f'"{version}-overview"'


def histogram_picture(state: Any, obs: str, package: str, name: str) -> tuple[bytes, str]:
    """(PNG bytes, ETag) of how a result's hits spread over its band."""
    bucket, ref, _, version = result(state, obs, package, name)

    def render() -> bytes:
        return pictures.histogram_png(bucket.hits(ref, version), bucket.header(ref, version))

    return state.pictures.get((bucket.uri, ref, version, "histogram"), render), f'"{version}-histogram"'


def search_hits(state: Any, **filters: Any) -> list[dict[str, Any]]:
    """Hits across observations from the hits index, each with its page's path."""
    rows = state.index.query_hits(**filters)
    for row in rows:
        package, _, name = row["algorithm"].partition("/")
        row["package"], row["name"] = package, name
    return [to_jsonable(r) for r in rows]
