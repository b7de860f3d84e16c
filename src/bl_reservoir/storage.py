"""Buckets (contract C3), behind fsspec: where result folders go up, and how they come down.

Buckets are local folders, `gs://` or `s3://`. A result folder is uploaded to
`<bucket>/<obs_name>/<alg_package>/<alg_name>/` with `manifest.json` last: a reader that sees the
manifest sees every other file. An old result is taken down (manifest first) before a new one
goes up. Transient errors are retried with exponential backoff. Inputs are fetched by
`bl_reservoir.io.fetch`, whose filesystems and retry policy this module shares.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path, PurePosixPath
from typing import Any

from bl_reservoir.errors import UploadError
from bl_reservoir.io.fetch import filesystem, local_path, obs_name, reason, retry, scheme
from bl_reservoir.results import MANIFEST

log = logging.getLogger(__name__)

BUCKET_SCHEMES = ("file", "gs", "gcs", "s3")
UPLOAD_THREADS = 8
#: Top-level folders of a bucket that hold no observation's results (so no observation may take these names).
CADENCES, SENSITIVITY = "cadences", "sensitivity"
RESERVED = (CADENCES, SENSITIVITY)


# ---------------------------------------------------------------- buckets

def open_bucket(uri: str | os.PathLike) -> tuple[Any, str]:
    """(fsspec filesystem, root path inside it) for a bucket URI or local folder."""
    uri = os.fspath(uri)
    protocol = scheme(uri)
    if protocol not in BUCKET_SCHEMES:
        raise UploadError(uri, f"scheme {protocol}:// is not supported for buckets "
                               "(use a local folder, gs:// or s3://)")
    if protocol == "file":
        from fsspec.implementations.local import LocalFileSystem

        return LocalFileSystem(), str(local_path(uri).resolve())
    fs = filesystem(uri)
    return fs, fs._strip_protocol(uri).rstrip("/")


def result_uri(bucket: str, obs: str, package: str, name: str) -> str:
    """`<bucket>/<obs_name>/<alg_package>/<alg_name>` (C3)."""
    return f"{str(bucket).rstrip('/')}/{obs}/{package}/{name}"


def events_uri(bucket: str, cadence_id: str) -> str:
    """`<bucket>/cadences/<cadence_id>/events` (C8): where a cadence's events stage writes."""
    return f"{str(bucket).rstrip('/')}/{CADENCES}/{cadence_id}/events"


def is_complete(uri: str) -> dict[str, Any] | None:
    """The manifest of the result at `uri` when it is complete, else None.

    Raises `UploadError` when the bucket cannot be reached (so a job fails before doing work).
    """
    fs, root = open_bucket(uri)
    path = f"{root}/{MANIFEST}"
    try:
        data = retry(f"read of {uri}/{MANIFEST}", lambda: fs.cat_file(path))
    except FileNotFoundError:
        return None
    except Exception as exc:  # noqa: BLE001 - any backend error becomes one line naming the URI
        raise UploadError(uri, f"cannot reach the bucket ({reason(exc)})") from None
    try:
        manifest = json.loads(data)
    except ValueError:
        log.warning("%s/%s is not JSON: treated as incomplete", uri, MANIFEST)
        return None
    return manifest if isinstance(manifest, dict) else None


def _default_dest(bucket: str, results_dir: Path) -> str:
    """C3 place for a folder whose manifest names its input and algorithm, else `<bucket>/<folder name>`."""
    try:
        manifest = json.loads((results_dir / MANIFEST).read_text())
        algorithm, source = manifest["algorithm"], manifest["input"]["uri"]
        if algorithm.get("package") and algorithm.get("name") and source:
            return result_uri(bucket, obs_name(source), algorithm["package"], algorithm["name"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return f"{str(bucket).rstrip('/')}/{results_dir.name}"


def remove_result(uri: str) -> None:
    """Take a result down: its manifest first (so no reader trusts it any more), then the rest."""
    fs, root = open_bucket(uri)
    try:
        if fs.exists(f"{root}/{MANIFEST}"):
            retry(f"removal of {uri}/{MANIFEST}", lambda: fs.rm_file(f"{root}/{MANIFEST}"))
        for path in retry(f"listing of {uri}", lambda: fs.find(root)):
            retry(f"removal of {path}", lambda p=path: fs.rm_file(p))
        if fs.isdir(root):
            fs.rm(root, recursive=True)
    except FileNotFoundError:
        return
    except Exception as exc:  # noqa: BLE001 - any backend error becomes one line naming the URI
        raise UploadError(uri, f"cannot remove the old result ({reason(exc)})") from None


def upload_dir(bucket: str, results_dir: str | os.PathLike, dest: str | None = None) -> str:
    """Upload a results folder into a bucket, `manifest.json` last; returns the result URI.

    `upload_dir("bl-scale", results_dir)` puts it at its C3 place (from its manifest). Files go
    up in parallel with retries; an old result at the same place is removed first. On failure
    what was uploaded is removed again and `UploadError` says why.
    """
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        raise UploadError(os.fspath(results_dir), "results folder does not exist")
    dest = dest or _default_dest(bucket, results_dir)
    fs, root = open_bucket(dest)
    files = sorted(p for p in results_dir.rglob("*") if p.is_file() and not p.name.startswith("."))
    body = [p for p in files if p.relative_to(results_dir).as_posix() != MANIFEST]
    manifest = results_dir / MANIFEST
    remove_result(dest)
    try:
        if scheme(dest) == "file":
            fs.makedirs(root, exist_ok=True)

        def put(path: Path) -> None:
            remote = f"{root}/{path.relative_to(results_dir).as_posix()}"
            if scheme(dest) == "file":
                fs.makedirs(str(PurePosixPath(remote).parent), exist_ok=True)
            retry(f"upload of {remote}", lambda: fs.put_file(str(path), remote))

        with ThreadPoolExecutor(max_workers=UPLOAD_THREADS) as pool:
            list(pool.map(put, body))  # list() re-raises the first failure
        if manifest.is_file():
            _put_last(fs, dest, root, manifest)
    except Exception as exc:  # noqa: BLE001 - any backend error becomes one line naming the URI
        try:
            remove_result(dest)
        except UploadError:
            log.warning("could not remove the partial upload at %s", dest)
        raise UploadError(dest, f"upload failed ({reason(exc)})") from None
    log.info("uploaded %d files from %s to %s", len(files), results_dir, dest)
    return dest


def _put_last(fs: Any, dest: str, root: str, manifest: Path) -> None:
    remote = f"{root}/{MANIFEST}"
    if scheme(dest) != "file":
        retry(f"upload of {remote}", lambda: fs.put_file(str(manifest), remote))
        return
    # A local file appears at once while it is written: write aside, then rename atomically.
    tmp = Path(root) / f".{MANIFEST}.{uuid.uuid4().hex[:8]}.tmp"
    shutil.copyfile(manifest, tmp)
    os.replace(tmp, remote)
