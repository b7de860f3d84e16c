"""Reading results from the bucket for the web tier: safe names, safe files, small caches.

Every name that comes from a URL passes `safe_name` before it becomes part of a path, so
`..`, absolute paths, slashes, backslashes and NUL never reach the filesystem. Only the
C2 files that need no unpickling are read (`header.json`, `info_df.parquet`, `filtered.npy`
with `allow_pickle=False`, `manifest.json`), through fsspec, so a local folder, `gs://` and
`s3://` behave alike. Parsed files are cached under a key that includes a digest of the
result's manifest: a result that is re-uploaded gets a new manifest, hence a new key. A manifest
that lists its files (as uploads write it) is trusted only once they match it: otherwise the
result is incomplete (a commit in progress, or one cut short) and answered as missing.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from bl_reservoir.io.fetch import safe_name
from bl_reservoir.results import HEADER_JSON, INFO_PARQUET, MANIFEST, STAMPS, check_files
from bl_reservoir.storage import CADENCES, RESERVED, SENSITIVITY

log = logging.getLogger(__name__)

#: Folder names a URL may name: no separators, no dot-only names, no control characters.
LOG_FILE = "log.txt"


class NotInBucket(LookupError):
    """A name that is unsafe or names nothing in the bucket (always answered with 404)."""


def check_names(*names: str) -> None:
    """Raise `NotInBucket` unless every name is safe."""
    for name in names:
        if not safe_name(name):
            raise NotInBucket(name)


@dataclass(frozen=True, order=True)
class ResultRef:
    """One results folder: `<bucket>/<obs>/<package>/<name>` (contract C3)."""

    obs: str
    package: str
    name: str

    @property
    def algorithm(self) -> str:
        return f"{self.package}/{self.name}"


class _LRU:
    """A small thread-safe LRU map; `get_or_make` builds a missing value once per key."""

    def __init__(self, size: int):
        self.size = size
        self._data: OrderedDict[Any, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Any) -> Any:
        with self._lock:
            if key in self._data:
                self._data.move_to_end(key)
                return self._data[key]
        return None

    def put(self, key: Any, value: Any) -> None:
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.size:
                self._data.popitem(last=False)

    def get_or_make(self, key: Any, make: Callable[[], Any]) -> Any:
        found = self.get(key)
        if found is None:
            found = make()
            self.put(key, found)
        return found


def _npy_header(f: Any) -> tuple[tuple[int, ...], bool, np.dtype]:
    """(shape, fortran_order, dtype) of an open `.npy` file, leaving it at the first data byte."""
    fmt = np.lib.format
    version = fmt.read_magic(f)
    if version == (1, 0):
        return fmt.read_array_header_1_0(f)
    if version == (2, 0):
        return fmt.read_array_header_2_0(f)
    raise NotInBucket(f"unsupported .npy format version {version}")


class Bucket:
    """The results in one bucket, read without unpickling; cheap to share between threads."""

    def __init__(self, uri: str, cache_size: int = 64):
        from bl_reservoir.storage import open_bucket

        self.uri = str(uri)
        self.fs, self.root = open_bucket(self.uri)
        self._frames = _LRU(cache_size)
        self._headers = _LRU(cache_size * 4)
        self._checked = _LRU(cache_size * 16)  # (ref, manifest digest) whose files matched it

    # -- paths -----------------------------------------------------------------------------

    def path(self, *names: str) -> str:
        """Path inside the bucket's filesystem of already-checked names."""
        check_names(*names)
        return "/".join([self.root, *names])

    def result_uri(self, ref: ResultRef) -> str:
        return f"{self.uri.rstrip('/')}/{ref.obs}/{ref.package}/{ref.name}"

    def read(self, *names: str) -> bytes:
        """The bytes of `<bucket>/<names...>` (each a safe name); `NotInBucket` when missing."""
        return self._cat(self.path(*names))

    def _cat(self, path: str) -> bytes:
        try:
            return self.fs.cat_file(path)
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise NotInBucket(path) from None

    # -- one result ------------------------------------------------------------------------

    def manifest(self, ref: ResultRef) -> tuple[dict[str, Any], str]:
        """(manifest dict, digest of its bytes); `NotInBucket` when the result is missing or incomplete
        (its files do not match the ones it lists: checked once per manifest version)."""
        raw = self._cat(self.path(ref.obs, ref.package, ref.name, MANIFEST))
        try:
            manifest = json.loads(raw)
        except ValueError:
            raise NotInBucket(f"{ref}: manifest.json is not JSON") from None
        if not isinstance(manifest, dict):
            raise NotInBucket(f"{ref}: manifest.json is not an object")
        digest = hashlib.sha1(raw).hexdigest()[:16]
        if self._checked.get((ref, digest)) is None:
            mismatch = check_files(self.fs, self.path(ref.obs, ref.package, ref.name), manifest)
            if mismatch:
                raise NotInBucket(f"{ref}: incomplete, its files do not match manifest.json ({mismatch})")
            self._checked.put((ref, digest), True)
        return manifest, digest

    def header(self, ref: ResultRef, version: str | None = None) -> dict[str, Any]:
        """The observation header from `header.json` (cached per manifest digest)."""
        version = version or self.manifest(ref)[1]

        def load() -> dict[str, Any]:
            value = json.loads(self._cat(self.path(ref.obs, ref.package, ref.name, HEADER_JSON)))
            return value if isinstance(value, dict) else {}

        return self._headers.get_or_make((ref, version), load)

    def hits(self, ref: ResultRef, version: str | None = None) -> pd.DataFrame:
        """The hits table from `info_df.parquet` (cached per manifest digest; do not modify it)."""
        version = version or self.manifest(ref)[1]

        def load() -> pd.DataFrame:
            raw = self._cat(self.path(ref.obs, ref.package, ref.name, INFO_PARQUET))
            frame = pd.read_parquet(io.BytesIO(raw)).reset_index(drop=True)
            return frame

        return self._frames.get_or_make((ref, version), load)

    def stamp(self, ref: ResultRef, i: int, window: Callable[[int, int], slice] | None = None) -> np.ndarray:
        """Stamp `i` of `filtered.npy`, float32 (n_time, width), reading only that row's bytes; with `window`
        (a function of n_time and width giving the columns wanted), only those columns' bytes."""
        path = self.path(ref.obs, ref.package, ref.name, STAMPS)
        try:
            f = self.fs.open(path, "rb")
        except (FileNotFoundError, IsADirectoryError):
            raise NotInBucket(path) from None
        with f:
            shape, fortran, dtype = _npy_header(f)
            if dtype.hasobject or fortran or len(shape) != 3:
                raise NotInBucket(f"{path}: not a C-ordered (n_hits, n_time, width) numeric array")
            if not 0 <= i < shape[0]:
                raise NotInBucket(f"{path}: no stamp {i}")
            n_time, width = shape[1:]
            start = f.tell() + i * n_time * width * dtype.itemsize
            first, stop, _ = (window(n_time, width) if window else slice(0, width)).indices(width)
            # the whole row in one read, or a window's columns in one read per integration
            reads = [(start, n_time * width)] if (first, stop) == (0, width) else \
                [(start + (t * width + first) * dtype.itemsize, max(0, stop - first)) for t in range(n_time)]
            chunks = []
            for offset, count in reads:
                f.seek(offset)
                chunks.append(f.read(count * dtype.itemsize))
                if len(chunks[-1]) != count * dtype.itemsize:
                    raise NotInBucket(f"{path}: truncated")
        return np.frombuffer(b"".join(chunks), dtype=dtype).reshape(n_time, -1).astype(np.float32)

    def log_text(self, ref: ResultRef, limit_bytes: int = 200_000) -> str | None:
        """The tail of the result's `log.txt`, or None when there is none."""
        try:
            raw = self._cat(self.path(ref.obs, ref.package, ref.name, LOG_FILE))
        except NotInBucket:
            return None
        return raw[-limit_bytes:].decode("utf-8", errors="replace")

    # -- the whole bucket ------------------------------------------------------------------

    def results_of(self, obs: str) -> list[ResultRef]:
        """Every complete result of one observation found in the bucket (a small listing)."""
        base = self.path(obs)
        found = self.fs.glob(f"{base}/*/*/{MANIFEST}")
        return sorted(ref for ref in map(self._ref_of, found) if ref is not None and ref.obs == obs)

    def scan(self) -> Iterator[ResultRef]:
        """Every complete result in the bucket (one listing of the whole bucket: for reindexing only)."""
        for path in sorted(self.fs.glob(f"{self.root}/*/*/*/{MANIFEST}")):
            ref = self._ref_of(path)
            if ref is not None and ref.obs not in RESERVED:
                yield ref

    def _ref_of(self, manifest_path: str) -> ResultRef | None:
        parts = self.fs._strip_protocol(manifest_path).rstrip("/").split("/")
        if len(parts) < 4 or not all(safe_name(p) for p in parts[-4:-1]):
            return None
        return ResultRef(*parts[-4:-1])

    # -- cadences' events folders (written by a campaign's events stage) ------------------------

    def cadences(self) -> Iterator[tuple[str, dict[str, Any], pd.DataFrame, list[str]]]:
        """(cadence id, manifest, events table, picture names) of every complete events folder (reindexing)."""
        for path in sorted(self.fs.glob(f"{self.path(CADENCES)}/*/events/{MANIFEST}")):
            cadence_id = self.fs._strip_protocol(path).rstrip("/").split("/")[-3]
            if not safe_name(cadence_id):
                continue
            try:
                manifest = json.loads(self.read(CADENCES, cadence_id, "events", MANIFEST))
                events = pd.read_parquet(io.BytesIO(self.read(CADENCES, cadence_id, "events", "events.parquet")))
                names = self.fs.ls(self.path(CADENCES, cadence_id, "events"), detail=False)
            except (NotInBucket, ValueError, OSError) as exc:
                log.warning("%s/%s/%s: not read (%s)", self.uri, CADENCES, cadence_id, exc)
                continue
            pictures = [n.rstrip("/").rsplit("/", 1)[-1] for n in names if n.endswith(".png")]
            yield cadence_id, manifest, events, pictures

    # -- sensitivity reports (written by `bl-reservoir sensitivity`) -------------------------

    def reports(self) -> list[str]:
        """Names of saved sensitivity reports: `<bucket>/sensitivity/<report>/`."""
        base = self.path(SENSITIVITY)
        try:
            entries = self.fs.ls(base, detail=True)
        except (FileNotFoundError, NotADirectoryError):
            return []
        names = (e["name"].rstrip("/").rsplit("/", 1)[-1] for e in entries if e.get("type") == "directory")
        return sorted(n for n in names if safe_name(n))

    def report_files(self, report: str) -> dict[str, Any]:
        """`sensitivity.json` (parsed, or None), `report.md` text (or None) and PNG names of one report."""
        base = self.path(SENSITIVITY, report)
        try:
            names = [e.rstrip("/").rsplit("/", 1)[-1] for e in self.fs.ls(base, detail=False)]
        except (FileNotFoundError, NotADirectoryError):
            raise NotInBucket(base) from None
        out: dict[str, Any] = {"name": report, "summary": None, "markdown": None,
                               "pictures": sorted(n for n in names if n.endswith(".png") and safe_name(n))}
        if "sensitivity.json" in names:
            try:
                out["summary"] = json.loads(self._cat(f"{base}/sensitivity.json"))
            except ValueError:
                log.warning("%s/sensitivity.json is not JSON", base)
        if "report.md" in names:
            out["markdown"] = self._cat(f"{base}/report.md").decode("utf-8", errors="replace")
        return out

    def report_picture(self, report: str, file: str) -> bytes:
        if not file.endswith(".png"):
            raise NotInBucket(file)
        return self._cat(self.path(SENSITIVITY, report, file))
