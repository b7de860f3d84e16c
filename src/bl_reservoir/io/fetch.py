"""Inputs from anywhere: a local path, `file://`, `http(s)://`, `gs://` or `s3://`, behind fsspec.

The observation readers need a local file; `fetch_input` makes one (a checked download into the
cache, or the file itself). `filesystem` and `retry` are the fsspec access and retry policy that
the bucket code (`bl_reservoir.storage`) shares, so every URI is opened and retried one way.

Emulators: with `STORAGE_EMULATOR_HOST` set, `gs://` talks to it anonymously (gcsfs also needs
`GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT=false`, set here when missing); `s3://` honours the standard
`AWS_ENDPOINT_URL`.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any, TypeVar

from bl_reservoir import settings
from bl_reservoir.errors import FetchError, UploadError

log = logging.getLogger(__name__)

INPUT_SCHEMES = ("file", "http", "https", "gs", "gcs", "s3")
#: Seconds to wait before each retry of a transient error (so len + 1 attempts in all).
RETRY_DELAYS: tuple[float, ...] = (0.5, 1.0, 2.0)
_PERMANENT = (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError, ValueError)

T = TypeVar("T")


def scheme(uri: str) -> str:
    """The URI's scheme in lower case; `file` for a plain path."""
    head, sep, _ = str(uri).partition("://")
    return head.lower() if sep else "file"


def local_path(uri: str) -> Path:
    """The local path of a plain path or `file://` URI."""
    return Path(str(uri).removeprefix("file://")).expanduser()


def filesystem(uri: str) -> Any:
    """The fsspec filesystem for a remote URI, pointed at an emulator when the environment names one."""
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


def retry(what: str, fn: Callable[[], T], delays: tuple[float, ...] | None = None) -> T:
    """Call `fn`, retrying anything but a permanent error after each delay in `delays` (`RETRY_DELAYS`)."""
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


def reason(exc: BaseException) -> str:
    """`Type: first line of the message`, for one-line errors."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


def obs_name(uri: str | os.PathLike) -> str:
    """The observation's name: the input file name without its extension (C3)."""
    name = PurePosixPath(str(uri).split("?", 1)[0].rstrip("/")).name
    return name.rsplit(".", 1)[0] if "." in name else name


def _check_input_scheme(uri: str) -> str:
    protocol = scheme(uri)
    if protocol not in INPUT_SCHEMES:
        raise FetchError(uri, f"scheme {protocol}:// is not supported for inputs "
                              "(use a local path, file://, http(s)://, gs:// or s3://)")
    return protocol


def _missing(protocol: str) -> str:
    return "not found (404)" if protocol.startswith("http") else "no such object"


def input_size(uri: str) -> int:
    """Size in bytes of the input at `uri`, asked of its source; `FetchError` when it is not there."""
    protocol = _check_input_scheme(uri)
    if protocol == "file":
        path = local_path(uri)
        if not path.is_file():
            raise FetchError(uri, "no such file")
        return path.stat().st_size
    fs = filesystem(uri)
    try:
        info = retry(f"size of {uri}", lambda: fs.info(uri))
    except FileNotFoundError:
        raise FetchError(uri, _missing(protocol)) from None
    except Exception as exc:  # noqa: BLE001 - any backend error becomes one line naming the URI
        raise FetchError(uri, f"cannot reach the source ({reason(exc)})") from None
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
        return local_path(uri).resolve()
    size = input_size(uri)
    folder = Path(cache_dir) if cache_dir is not None else settings.cache_dir() / "inputs"
    folder.mkdir(parents=True, exist_ok=True)
    name = PurePosixPath(uri.split("?", 1)[0]).name or "input"
    target = folder / name
    if target.is_file() and target.stat().st_size == size:
        return target
    partial = folder / f".{name}.{uuid.uuid4().hex[:8]}.part"
    fs = filesystem(uri)
    try:
        retry(f"download of {uri}", lambda: fs.get_file(uri, str(partial)))
        got = partial.stat().st_size
        if got != size:
            raise FetchError(uri, f"downloaded {got} bytes but the source has {size}")
        os.replace(partial, target)
    except FetchError:
        raise
    except FileNotFoundError:
        raise FetchError(uri, _missing(protocol)) from None
    except Exception as exc:  # noqa: BLE001 - any backend error becomes one line naming the URI
        raise FetchError(uri, f"download failed ({reason(exc)})") from None
    finally:
        partial.unlink(missing_ok=True)
    log.info("fetched %s (%d bytes) to %s", uri, size, target)
    return target
