"""Buckets and input fetching (contract C3), behind fsspec.

Inputs come from a local path, `file://`, `http(s)://`, `gs://` or `s3://`; any other scheme is
refused. Buckets are local folders, `gs://` or `s3://`. A result folder is uploaded to
`<bucket>/<obs_name>/<alg_package>/<alg_name>/` with `manifest.json` last: a reader that sees the
manifest sees every other file. An old result is taken down (manifest first) before a new one
goes up. Transient errors are retried with exponential backoff.

Emulators: with `STORAGE_EMULATOR_HOST` set, `gs://` talks to it anonymously (gcsfs also needs
`GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT=false`, set here when missing); `s3://` honours the standard
`AWS_ENDPOINT_URL`.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path, PurePosixPath
from typing import Any, TypeVar

from bl_reservoir import settings
from bl_reservoir.errors import FetchError, UploadError
from bl_reservoir.results import MANIFEST

log = logging.getLogger(__name__)

INPUT_SCHEMES = ("file", "http", "https", "gs", "gcs", "s3")
BUCKET_SCHEMES = ("file", "gs", "gcs", "s3")
#: Seconds to wait before each retry of a transient error (so len + 1 attempts in all).
RETRY_DELAYS: tuple[float, ...] = (0.5, 1.0, 2.0)
UPLOAD_THREADS = 8
_PERMANENT = (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError, ValueError)

T = TypeVar("T")


def scheme(uri: str) -> str:
    """The URI's scheme in lower case; `file` for a plain path."""
    head, sep, _ = str(uri).partition("://")
    return head.lower() if sep else "file"


def _local_path(uri: str) -> Path:
    return Path(str(uri).removeprefix("file://")).expanduser()


def _filesystem(uri: str):
    import fsspec

    protocol = scheme(uri)
    options: dict[str, Any] = {}
    if protocol in ("gs", "gcs") and os.environ.get("STORAGE_EMULATOR_HOST"):
        # Without this gcsfs probes for hierarchical namespaces over gRPC, ~1 min per bucket call.
        os.environ.setdefault("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")
        host = os.environ["STORAGE_EMULATOR_HOST"]
        options["token"] = "anon"
        options["endpoint_url"] = host if "://" in host else f"http://{host}"
    if protocol == "s3" and os.environ.get("AWS_ENDPOINT_URL"):
        options["client_kwargs"] = {"endpoint_url": os.environ["AWS_ENDPOINT_URL"]}
    try:
        return fsspec.filesystem(protocol, **options)
    except ImportError as exc:
        extra = {"gs": "gcs", "gcs": "gcs", "s3": "s3"}.get(protocol, "all")
        raise UploadError(uri, f"{protocol}:// needs an optional dependency: pip install "
                               f"'bl-reservoir[{extra}]' ({exc})") from None


def _retry(what: str, fn: Callable[[], T], delays: tuple[float, ...] | None = None) -> T:
    """Call `fn`, retrying anything but a permanent error after each delay in `delays`."""
    delays = RETRY_DELAYS if delays is None else delays
    for attempt, delay in enumerate([*delays, None]):
        try:
            return fn()
        except _PERMANENT:
            raise
        except Exception as exc:  # network stacks raise many types; all are worth a retry
            if delay is None:
                raise
            log.info("%s failed (%s: %s); retry %d in %.1f s", what, type(exc).__name__, exc, attempt + 1, delay)
            time.sleep(delay)
    raise AssertionError("unreachable")


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


# ---------------------------------------------------------------- inputs

def obs_name(uri: str) -> str:
    """The observation's name: the input file name without its extension (C3)."""
    name = PurePosixPath(str(uri).split("?", 1)[0].rstrip("/")).name
    return name.rsplit(".", 1)[0] if "." in name else name


def _check_input_scheme(uri: str) -> str:
    protocol = scheme(uri)
    if protocol not in INPUT_SCHEMES:
        raise FetchError(uri, f"scheme {protocol}:// is not supported for inputs "
                              "(use a local path, file://, http(s)://, gs:// or s3://)")
    return protocol


def input_size(uri: str) -> int:
    """Size in bytes of the input at `uri`, asked of its source; `FetchError` when it is not there."""
    protocol = _check_input_scheme(uri)
    if protocol == "file":
        path = _local_path(uri)
        if not path.is_file():
            raise FetchError(uri, "no such file")
        return path.stat().st_size
    fs = _filesystem(uri)
    try:
        info = _retry(f"size of {uri}", lambda: fs.info(uri))
    except FileNotFoundError:
        raise FetchError(uri, "not found (404)" if protocol.startswith("http") else "no such object") from None
    except Exception as exc:  # noqa: BLE001 - any backend error becomes one line naming the URI
        raise FetchError(uri, f"cannot reach the source ({_reason(exc)})") from None
    size = info.get("size")
    if size is None:
        raise FetchError(uri, "the source does not say how large the file is")
    return int(size)


def fetch_input(uri: str, cache_dir: str | os.PathLike | None = None) -> Path:
    """A local path holding the input: the file itself when local, else a checked download.

    Downloads go to `cache_dir` (default `<cache>/inputs`) under a temporary name, are checked
    against the source's size and then renamed; a copy already there with the right size is reused.
    """
    protocol = _check_input_scheme(uri)
    if protocol == "file":
        input_size(uri)
        return _local_path(uri).resolve()
    size = input_size(uri)
    folder = Path(cache_dir) if cache_dir is not None else settings.cache_dir() / "inputs"
    folder.mkdir(parents=True, exist_ok=True)
    name = PurePosixPath(uri.split("?", 1)[0]).name or "input"
    target = folder / name
    if target.is_file() and target.stat().st_size == size:
        return target
    partial = folder / f".{name}.{uuid.uuid4().hex[:8]}.part"
    fs = _filesystem(uri)
    try:
        _retry(f"download of {uri}", lambda: fs.get_file(uri, str(partial)))
        got = partial.stat().st_size
        if got != size:
            raise FetchError(uri, f"downloaded {got} bytes but the source has {size}")
        os.replace(partial, target)
    except FetchError:
        raise
    except FileNotFoundError:
        raise FetchError(uri, "not found (404)" if protocol.startswith("http") else "no such object") from None
    except Exception as exc:  # noqa: BLE001 - any backend error becomes one line naming the URI
        raise FetchError(uri, f"download failed ({_reason(exc)})") from None
    finally:
        partial.unlink(missing_ok=True)
    log.info("fetched %s (%d bytes) to %s", uri, size, target)
    return target


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

        return LocalFileSystem(), str(_local_path(uri).resolve())
    fs = _filesystem(uri)
    return fs, fs._strip_protocol(uri).rstrip("/")


def result_uri(bucket: str, obs_name: str, package: str, name: str) -> str:
    """`<bucket>/<obs_name>/<alg_package>/<alg_name>` (C3)."""
    return f"{str(bucket).rstrip('/')}/{obs_name}/{package}/{name}"


def is_complete(uri: str) -> dict[str, Any] | None:
    """The manifest of the result at `uri` when it is complete, else None.

    Raises `UploadError` when the bucket cannot be reached (so a job fails before doing work).
    """
    fs, root = open_bucket(uri)
    path = f"{root}/{MANIFEST}"
    try:
        data = _retry(f"read of {uri}/{MANIFEST}", lambda: fs.cat_file(path))
    except FileNotFoundError:
        return None
    except Exception as exc:  # noqa: BLE001 - any backend error becomes one line naming the URI
        raise UploadError(uri, f"cannot reach the bucket ({_reason(exc)})") from None
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
            _retry(f"removal of {uri}/{MANIFEST}", lambda: fs.rm_file(f"{root}/{MANIFEST}"))
        for path in _retry(f"listing of {uri}", lambda: fs.find(root)):
            _retry(f"removal of {path}", lambda p=path: fs.rm_file(p))
        if fs.isdir(root):
            fs.rm(root, recursive=True)
    except FileNotFoundError:
        return
    except Exception as exc:  # noqa: BLE001 - any backend error becomes one line naming the URI
        raise UploadError(uri, f"cannot remove the old result ({_reason(exc)})") from None


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
            _retry(f"upload of {remote}", lambda: fs.put_file(str(path), remote))

        with ThreadPoolExecutor(max_workers=UPLOAD_THREADS) as pool:
            list(pool.map(put, body))  # list() re-raises the first failure
        if manifest.is_file():
            _put_last(fs, dest, root, manifest)
    except Exception as exc:  # noqa: BLE001 - any backend error becomes one line naming the URI
        try:
            remove_result(dest)
        except UploadError:
            log.warning("could not remove the partial upload at %s", dest)
        raise UploadError(dest, f"upload failed ({_reason(exc)})") from None
    log.info("uploaded %d files from %s to %s", len(files), results_dir, dest)
    return dest


def _put_last(fs: Any, dest: str, root: str, manifest: Path) -> None:
    remote = f"{root}/{MANIFEST}"
    if scheme(dest) != "file":
        _retry(f"upload of {remote}", lambda: fs.put_file(str(manifest), remote))
        return
    # A local file appears at once while it is written: write aside, then rename atomically.
    tmp = Path(root) / f".{MANIFEST}.{uuid.uuid4().hex[:8]}.tmp"
    shutil.copyfile(manifest, tmp)
    os.replace(tmp, remote)
