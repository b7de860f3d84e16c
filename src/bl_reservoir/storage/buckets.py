"""Buckets (contract C3): which ones we take, where a result goes in one, and what a complete one is.

A bucket is a local folder, `gs://` or `s3://`, behind fsspec (`bl_reservoir.io.fetch` gives the
filesystems and the retry policy). `commit` puts result folders into one.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path, PurePosixPath
from typing import Any

from bl_reservoir.errors import UploadError
from bl_reservoir.io.fetch import filesystem, local_path, obs_name, reason, retry, scheme
from bl_reservoir.results import MANIFEST, check_files

log = logging.getLogger(__name__)

BUCKET_SCHEMES = ("file", "gs", "gcs", "s3")
#: Top-level folders of a bucket that hold no observation's results (so no observation may take these names).
CADENCES, SENSITIVITY = "cadences", "sensitivity"
RESERVED = (CADENCES, SENSITIVITY)


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


def check_bucket(uri: str | os.PathLike) -> None:
    """Raise `UploadError` naming the bucket unless results can go there: a `gs://` or `s3://` bucket
    that exists, or a local folder that exists (or whose parent does) and is writable.

    Cheap (one request), so a job checks it before any work rather than failing at its upload.
    """
    uri = os.fspath(uri)
    fs, root = open_bucket(uri)
    if scheme(uri) == "file":
        folder = Path(root)
        target = folder if folder.exists() else folder.parent
        if not target.exists():
            raise UploadError(uri, f"the bucket folder cannot be made: {target} does not exist")
        if not target.is_dir():
            raise UploadError(uri, f"the bucket folder cannot be made: {target} is not a folder")
        if not os.access(target, os.W_OK | os.X_OK):
            raise UploadError(uri, f"the bucket folder cannot be written: {target} is not writable")
        return
    name = root.split("/", 1)[0]

    def exists() -> bool:
        try:
            fs.info(name)
        except FileNotFoundError:
            return False
        except OSError as exc:
            # Allowed to write objects but not to read the bucket's metadata (a least-privilege role):
            # it exists, and whether it takes our files shows at the upload.
            if isinstance(exc, PermissionError) or str(exc).startswith("Forbidden"):
                return True
            raise
        return True

    try:
        found = retry(f"lookup of bucket {name}", exists)
    except Exception as exc:  # noqa: BLE001 - any backend error becomes one line naming the URI
        raise UploadError(uri, f"cannot reach the bucket ({reason(exc)})") from None
    if not found:
        raise UploadError(uri, f"no such bucket {name!r}")


def is_complete(uri: str) -> dict[str, Any] | None:
    """The manifest of the result at `uri` when it is complete (its files match it), else None.

    Raises `UploadError` when the bucket cannot be reached (so a job fails before doing work).
    """
    fs, root = open_bucket(uri)
    try:
        manifest = read_manifest(fs, root, uri)
        if manifest is None:
            return None
        mismatch = check_files(fs, root, manifest)
    except Exception as exc:  # noqa: BLE001 - any backend error becomes one line naming the URI
        raise UploadError(uri, f"cannot reach the bucket ({reason(exc)})") from None
    if mismatch:
        log.info("%s: incomplete, its files do not match manifest.json (%s)", uri, mismatch)
        return None
    return manifest


def read_manifest(fs: Any, root: str, uri: str) -> dict[str, Any] | None:
    """The JSON object at `<root>/manifest.json` (of the result at `uri`), or None when missing or not an object."""
    try:
        data = retry(f"read of {uri}/{MANIFEST}", lambda: fs.cat_file(f"{root}/{MANIFEST}"))
    except FileNotFoundError:
        return None
    try:
        manifest = json.loads(data)
    except ValueError:
        log.warning("%s/%s is not JSON: treated as incomplete", uri, MANIFEST)
        return None
    return manifest if isinstance(manifest, dict) else None


def input_file_name(uri: str) -> str:
    """The input's file name, extension included: what tells two inputs of one observation name apart."""
    return PurePosixPath(str(uri).split("?", 1)[0].rstrip("/")).name


def manifest_input(manifest: dict[str, Any]) -> str:
    """The input URI a result's manifest names ("" when it names none)."""
    source = manifest.get("input")
    return str(source.get("uri") or "") if isinstance(source, dict) else ""


def check_same_input(dest: str, manifest: dict[str, Any], input_uri: str) -> None:
    """Raise `UploadError` when the complete result at `dest` (its `manifest`) comes from another input
    file that shares the observation name of `input_uri` (`x.fil` and `x.h5`): C3 has one place for both.

    The same file name is the same observation (a copy moved from a disk to a bucket); a changed
    file at the same name is a new version of it, and replaces the old result.
    """
    other = manifest_input(manifest)
    if not other or not input_uri or input_file_name(other) == input_file_name(input_uri):
        return
    raise UploadError(dest, f"holds the result of {other}, and {input_uri} has the same observation name "
                            f"{obs_name(input_uri)!r}: rename one of them, use another bucket, or force the run "
                            "(--force) to replace it")
