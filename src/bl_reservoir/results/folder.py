"""The standard results folder (contract C2): write it, complete it, read it back safely."""

from __future__ import annotations

import datetime as _dt
import io
import json
import os
import pickle
import platform
import socket
import sys
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import pandas as pd

from bl_reservoir.errors import InvalidResults
from bl_reservoir.results.files import check_files
from bl_reservoir.results.pickles import index_as_column, read_unpickled, unpickle_here
from bl_reservoir.results.values import to_jsonable

SCHEMA = 1
KNOWN_SCHEMAS = (1,)

HEADER_PKL, HEADER_JSON = "header.pkl", "header.json"
INFO_PKL, INFO_PARQUET = "info_df.pkl", "info_df.parquet"
STAMPS, MANIFEST = "filtered.npy", "manifest.json"
#: Every file of a complete folder, in the order they are written (manifest last).
FILES = (HEADER_PKL, HEADER_JSON, INFO_PKL, INFO_PARQUET, STAMPS, MANIFEST)
#: What a reader that must not unpickle needs.
SAFE_FILES = (HEADER_JSON, INFO_PARQUET, STAMPS, MANIFEST)
ORIGINAL_FILES = (HEADER_PKL, INFO_PKL, STAMPS)
REQUIRED_COLUMNS = ("index", "freqs", "coarse_channel")
_VERSIONED = ("bl-reservoir", "numpy", "scipy", "pandas", "h5py", "numba", "setigen")


@dataclass
class Results:
    """A results folder read back: header dict, hits frame, stamps array, manifest dict."""

    header: dict[str, Any]
    hits: pd.DataFrame
    stamps: np.ndarray
    manifest: dict[str, Any]


def utc_text(moment: _dt.datetime) -> str:
    """`moment` as the results and the job store write times: ISO 8601 UTC to the millisecond, with a `Z`
    (so that stored times compare as strings)."""
    return moment.astimezone(_dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def utcnow() -> str:
    """Now, as `utc_text` writes it."""
    return utc_text(_dt.datetime.now(_dt.timezone.utc))


def library_versions() -> dict[str, str]:
    """Versions of the libraries that shape results, for the manifest: a loaded module's own `__version__`
    (the code that ran, and free), else the installed distribution's (a metadata scan, ~2-8 ms each)."""
    out = {"python": platform.python_version()}
    for name in _VERSIONED:
        version = getattr(sys.modules.get(name.replace("-", "_")), "__version__", None)
        try:
            out[name] = version if isinstance(version, str) else metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def build_manifest(*, algorithm: Mapping[str, Any], parameters: Mapping[str, Any] | None = None,
                   input_uri: str = "", input_size: int | None = None, started_at: str | None = None,
                   finished_at: str | None = None, wall_seconds: float | None = None,
                   **extra: Any) -> dict[str, Any]:
    """A manifest dict with every C2 field; `n_hits` is filled in when the folder is written."""
    return {
        "schema": SCHEMA,
        "algorithm": {"package": algorithm.get("package", ""), "name": algorithm.get("name", ""),
                      "version": str(algorithm.get("version", ""))},
        "parameters": to_jsonable(dict(parameters or {})),
        "input": {"uri": input_uri, "size_bytes": input_size},
        "started_at": started_at or utcnow(),
        "finished_at": finished_at or utcnow(),
        "wall_seconds": wall_seconds,
        "host": socket.gethostname(),
        "versions": library_versions(),
        **extra,
    }


def _atomic_write(path: Path, data: bytes | Callable[[BinaryIO], object]) -> None:
    """Write `data` (bytes, or a function writing to a binary file) to a temporary name, then rename.

    Neither step follows a symbolic link an algorithm may have left at either name.
    """
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0), 0o644)
    with open(fd, "wb") as f:
        if callable(data):
            data(f)
        else:
            f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _check(out_dir: Path, hits: pd.DataFrame, stamps: np.ndarray) -> None:
    missing = [c for c in REQUIRED_COLUMNS if c not in hits.columns]
    if missing:
        raise InvalidResults(out_dir, f"info_df lacks column(s) {', '.join(missing)}")
    if stamps.ndim != 3:
        raise InvalidResults(out_dir, f"filtered.npy has shape {stamps.shape}, expected (n_hits, n_time, width)")
    if stamps.shape[0] != len(hits):
        raise InvalidResults(out_dir, f"filtered.npy holds {stamps.shape[0]} stamps but info_df has {len(hits)} hits")


def write_results(out_dir: str | os.PathLike, header: Mapping[str, Any], hits_df: pd.DataFrame,
                  stamps: np.ndarray, manifest: Mapping[str, Any], *,
                  extra_files: Mapping[str, Any] | None = None) -> Path:
    """Write all six C2 files to `out_dir` (created if missing), `manifest.json` last and atomically.

    `extra_files` maps further file names to content written before the manifest: an array for
    a `.npy` name (saved without pickle), a JSON-able object for a `.json` name, or bytes.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / MANIFEST).unlink(missing_ok=True)  # an old manifest must not vouch for new files
    hits = hits_df.reset_index(drop=True)
    stamps = np.ascontiguousarray(stamps, dtype=np.float32)
    _check(out, hits, stamps)
    extras = dict(extra_files or {})
    for name in extras:
        if name in FILES or Path(name).name != name or name.startswith("."):
            raise ValueError(f"extra results file {name!r} must be a new plain file name")
    header = dict(header)
    with open(out / HEADER_PKL, "wb") as f:
        pickle.dump(header, f)
    hits.to_pickle(out / INFO_PKL)
    np.save(out / STAMPS, stamps, allow_pickle=False)
    _write_safe_copies(out, header, hits)
    for name, content in extras.items():
        _write_extra(out / name, content)
    write_manifest(out, manifest, len(hits))
    return out


def _write_extra(path: Path, content: Any) -> None:
    if path.suffix == ".npy":
        np.save(path, np.asarray(content), allow_pickle=False)
    elif path.suffix == ".json":
        path.write_text(json.dumps(to_jsonable(content), indent=2))
    elif isinstance(content, bytes):
        path.write_bytes(content)
    else:
        raise ValueError(f"extra results file {path.name}: give an array (.npy), JSON (.json) or bytes")


def _write_safe_copies(out: Path, header: Mapping[str, Any], hits: pd.DataFrame) -> None:
    _atomic_write(out / HEADER_JSON, json.dumps(to_jsonable(header), indent=2).encode())
    _atomic_write(out / INFO_PARQUET, lambda f: hits.to_parquet(f, index=False))


def write_manifest(out_dir: str | os.PathLike, manifest: Mapping[str, Any], n_hits: int | None = None) -> Path:
    """Write `manifest.json` into `out_dir` atomically (a temporary name, then a rename): call it last,
    since its presence says the folder is complete. `n_hits`, when given, is set in it."""
    body = {"schema": SCHEMA, **to_jsonable(dict(manifest))}
    if n_hits is not None:
        body["n_hits"] = int(n_hits)
    path = Path(out_dir) / MANIFEST
    _atomic_write(path, json.dumps(body, indent=2).encode())
    return path


def complete_results(out_dir: str | os.PathLike, manifest: Mapping[str, Any] | None = None, *,
                     unpickled: str | os.PathLike | None = None) -> Path:
    """Turn a folder an algorithm just wrote into a complete C2 folder, without unpickling anything here.

    The header and hits come from the algorithm's own `header.json` and `info_df.parquet` when it
    wrote both, else from the copies `unpickle_command` made of its pickles in `unpickled` (when
    None, that command runs now with this interpreter). What the original format left out is
    filled in: `coarse_channel` (and `freqs`) from `index` and the header, float64 stamps become
    float32, and a folder with no hits may lack `filtered.npy`. Raises `InvalidResults` saying
    what is missing or malformed.
    """
    out = Path(out_dir)
    if not out.is_dir():
        raise InvalidResults(out, "results folder does not exist")
    missing = [name for name in (HEADER_PKL, INFO_PKL) if not (out / name).is_file()]
    if missing:
        raise InvalidResults(out, f"missing {', '.join(missing)}")
    if has_safe_copies(out):
        header, hits = _read_safe_copies(out)
    elif unpickled is not None:
        header, hits = read_unpickled(out, unpickled)
    else:
        with tempfile.TemporaryDirectory(prefix="blr-unpickled-") as tmp:
            unpickle_here(out, tmp)
            header, hits = read_unpickled(out, tmp)
    try:
        stamps = np.load(out / STAMPS, mmap_mode="r", allow_pickle=False) if (out / STAMPS).is_file() else None
    except Exception as exc:  # any unreadable file is the algorithm's fault, reported as such
        raise InvalidResults(out, f"unreadable results file ({type(exc).__name__}: {exc})") from None
    hits = _fill_columns(out, header, index_as_column(hits))
    stamps = _as_stamps(out, stamps, len(hits))
    _check(out, hits, stamps)
    (out / MANIFEST).unlink(missing_ok=True)
    if stamps.dtype != np.float32 or not (out / STAMPS).is_file():
        _atomic_write(out / STAMPS, lambda f: np.save(f, np.asarray(stamps, dtype=np.float32), allow_pickle=False))
    _write_safe_copies(out, header, hits)
    write_manifest(out, manifest or {}, len(hits))
    return out


def has_safe_copies(out_dir: str | os.PathLike) -> bool:
    """Did the algorithm write `header.json` and `info_df.parquet` itself (so no pickle need be read)?"""
    return (Path(out_dir) / HEADER_JSON).is_file() and (Path(out_dir) / INFO_PARQUET).is_file()


def _read_safe_copies(out: Path) -> tuple[dict[str, Any], pd.DataFrame]:
    try:
        header = json.loads((out / HEADER_JSON).read_bytes())
        hits = pd.read_parquet(out / INFO_PARQUET)
    except Exception as exc:  # any unreadable file is the algorithm's fault, reported as such
        raise InvalidResults(out, f"unreadable results file ({type(exc).__name__}: {exc})") from None
    if not isinstance(header, dict):
        raise InvalidResults(out, f"header.json holds a {type(header).__name__}, expected an object")
    return header, hits


def _fill_columns(out: Path, header: Mapping[str, Any], hits: pd.DataFrame) -> pd.DataFrame:
    """Add `freqs` and `coarse_channel` from `index` and the header when an algorithm left them out."""
    if "index" not in hits.columns or ("freqs" in hits.columns and "coarse_channel" in hits.columns):
        return hits
    from bl_reservoir.io.header import coarse_channel_width

    hits = hits.copy()
    index = hits["index"].to_numpy()
    try:
        if "freqs" not in hits.columns:
            hits["freqs"] = float(header["fch1"]) + float(header["foff"]) * index
        if "coarse_channel" not in hits.columns:
            hits["coarse_channel"] = (index // coarse_channel_width(header, str(out))).astype(np.int64)
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidResults(out, f"info_df lacks freqs/coarse_channel and the header cannot give them "
                                  f"({type(exc).__name__}: {exc})") from None
    return hits


def _as_stamps(out: Path, stamps: np.ndarray | None, n_hits: int) -> np.ndarray:
    if stamps is None or (stamps.size == 0 and stamps.ndim != 3):
        if n_hits:
            raise InvalidResults(out, f"missing {STAMPS} for {n_hits} hits")
        return np.zeros((0, 0, 0), dtype=np.float32)  # the original wrote nothing, or np.array([]), for no hits
    if not np.issubdtype(stamps.dtype, np.number):
        raise InvalidResults(out, f"filtered.npy holds {stamps.dtype} values, expected numbers")
    return stamps


def _join(base: str, name: str) -> str:
    return f"{base.rstrip('/')}/{name}"


def _why_incomplete(fs: Any, root: str) -> str:
    if not fs.isdir(root):
        return "no such results folder"
    if fs.exists(_join(root, INFO_PKL)) and not fs.exists(_join(root, INFO_PARQUET)):
        return "only the original pickled files and no manifest.json (complete_results() makes a full folder)"
    return "no manifest.json: the results are incomplete"


def read_results(path_or_uri: str | os.PathLike, *, stamps: bool = True) -> Results:
    """Read and validate a complete folder from a path or fsspec URI, never unpickling anything."""
    import fsspec

    base = os.fspath(path_or_uri)
    fs, root = fsspec.core.url_to_fs(base)

    def read(name: str) -> bytes:
        try:
            return fs.cat_file(_join(root, name))
        except FileNotFoundError:
            if name == MANIFEST:
                raise InvalidResults(base, "no manifest.json: the results are incomplete") from None
            raise InvalidResults(base, f"missing {name}") from None

    try:
        if not fs.exists(_join(root, MANIFEST)):
            raise InvalidResults(base, _why_incomplete(fs, root))
        manifest = json.loads(read(MANIFEST))
        if not isinstance(manifest, dict):
            raise InvalidResults(base, f"manifest.json holds a {type(manifest).__name__}, expected an object")
        if manifest.get("schema") not in KNOWN_SCHEMAS:
            raise InvalidResults(base, f"unknown manifest schema {manifest.get('schema')!r}")
        mismatch = check_files(fs, root, manifest)
        if mismatch:
            raise InvalidResults(base, f"the files do not match manifest.json ({mismatch}): the results are incomplete")
        header = json.loads(read(HEADER_JSON))
        if not isinstance(header, dict):
            raise InvalidResults(base, f"header.json holds a {type(header).__name__}, expected an object")
        hits = pd.read_parquet(io.BytesIO(read(INFO_PARQUET)))
        if stamps:
            array = np.load(io.BytesIO(read(STAMPS)), allow_pickle=False)
        else:
            array = np.zeros((len(hits), 0, 0), dtype=np.float32)
    except InvalidResults:
        raise
    except (ValueError, OSError) as exc:
        raise InvalidResults(base, f"malformed results ({type(exc).__name__}: {exc})") from None
    _check(Path(base), hits, array)
    if manifest.get("n_hits") not in (None, len(hits)):
        raise InvalidResults(base, f"manifest says {manifest['n_hits']} hits but info_df has {len(hits)}")
    return Results(header, hits, array, manifest)
