"""Files of one result a browser saves: its hits as CSV (filtered), the turboSETI `.dat`, the stamps.

The CSV is made from `info_df.parquet` with the hits table's filters and order. A text cell that a
spreadsheet would run as a formula (it begins with `=`, `+`, `-`, `@`, a tab or a carriage return)
gets a leading `'`; numbers are written as they are. The `.dat` and `filtered.npy` stream from the
bucket as stored, `CHUNK_BYTES` at a time, never whole in memory (stamps can be gigabytes).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import pandas as pd

from bl_reservoir.results import STAMPS
from bl_reservoir.web import hits as hit_table
from bl_reservoir.web.bucket import Bucket, NotInBucket, ResultRef, safe_name

CHUNK_BYTES = 1 << 20
#: The turboSETI `.dat` of a dedoppler result: `<input stem>.dat`, whatever the stem.
DAT = ".dat"
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def attachment(filename: str) -> dict[str, str]:
    """A Content-Disposition header saving the answer as `filename` (RFC 6266: an ASCII fallback, and the
    exact name percent-encoded for names with spaces, quotes or non-ASCII letters)."""
    fallback = "".join(c if c.isascii() and (c.isalnum() or c in "._-+") else "_" for c in filename)
    return {"Content-Disposition": f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename)}"}


def _defused(value: Any) -> Any:
    return "'" + value if isinstance(value, str) and value.startswith(_FORMULA_START) else value


def hits_csv(bucket: Bucket, ref: ResultRef, version: str, where: hit_table.HitFilter, sort: str | None,
             descending: bool) -> tuple[str, str]:
    """(CSV text of every hit of a result passing `where`, in the table's order with its row number `i`; its
    file name)."""
    frame = bucket.hits(ref, version)
    rows = hit_table.ordered(frame, where, sort, descending)
    part = frame.iloc[rows].reset_index(drop=True)
    part.insert(0, "i", rows)
    for column in part.columns:
        if pd.api.types.is_object_dtype(part[column]) or pd.api.types.is_string_dtype(part[column]):
            part[column] = part[column].map(_defused)
    return part.to_csv(index=False), f"{ref.obs}_{ref.package}_{ref.name}_hits.csv"


@dataclass
class StoredFile:
    """A file of a result, ready to stream: its chunks and the headers that name and size it."""

    chunks: Iterator[bytes]
    headers: dict[str, str]
    media_type: str


def dat_name(manifest: dict[str, Any], obs: str) -> str | None:
    """The `.dat` file a result's manifest lists (`<obs>.dat` for a manifest that lists no files)."""
    listed = manifest.get("files")
    if not isinstance(listed, dict):
        return f"{obs}{DAT}"
    return next((n for n in sorted(listed) if n.endswith(DAT) and safe_name(n)), None)


def links(ref: ResultRef, manifest: dict[str, Any], hits: Any) -> dict[str, str | None]:
    """API paths of a result's files: its hits as CSV, its stamps (`filtered.npy`), its `.dat` (None without)."""
    base = "/api/observations/" + "/".join(quote(n, safe="") for n in (ref.obs, ref.package, ref.name))
    has_dat = "drift_rate" in hits.columns and dat_name(manifest, ref.obs) is not None
    return {"csv": f"{base}/hits.csv", "stamps": f"{base}/filtered.npy", "dat": f"{base}/hits.dat" if has_dat else None}


def stored_file(bucket: Bucket, ref: ResultRef, manifest: dict[str, Any], kind: str) -> StoredFile:
    """`filtered.npy` (`kind` STAMPS) or the `.dat` (`kind` DAT) of one complete result; `NotInBucket` when
    it has none."""
    file = STAMPS if kind == STAMPS else dat_name(manifest, ref.obs)
    if file is None:
        raise NotInBucket(f"{ref}: no {kind} file")
    path = bucket.path(ref.obs, ref.package, ref.name, file)
    try:
        size = bucket.fs.size(path)
        handle = bucket.fs.open(path, "rb")
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        raise NotInBucket(path) from None

    def chunks() -> Iterator[bytes]:
        with handle:
            while block := handle.read(CHUNK_BYTES):
                yield block

    save_as = f"{ref.obs}_{ref.package}_{ref.name}_{file}" if kind == STAMPS else file
    headers = attachment(save_as)
    if size is not None:
        headers["Content-Length"] = str(size)
    return StoredFile(chunks(), headers, "application/octet-stream" if kind == STAMPS else "text/plain; charset=utf-8")
