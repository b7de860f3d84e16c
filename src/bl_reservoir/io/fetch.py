"""Inputs from anywhere: a local path, `file://`, `http(s)://`, `gs://` or `s3://`, behind fsspec.

The observation readers need a local file; `fetch_input` makes one (a checked download into the
cache, or the file itself). `filesystem` and `retry` are the fsspec access and retry policy that
the bucket code (`bl_reservoir.storage`) shares, so every URI is opened and retried one way.

An `http(s)://` input must come from a host `BL_RESERVOIR_INPUT_HOSTS` allows (any public host by
default; see `bl_reservoir.io.hosts`), checked before any connection and again at each one.

Emulators: with `STORAGE_EMULATOR_HOST` set, `gs://` talks to it anonymously (gcsfs also needs
`GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT=false`, set here when missing); `s3://` honours the standard
`AWS_ENDPOINT_URL`.
"""

from __future__ import annotations

import logging
import os
import re
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath
from typing import Any, TypeVar

from bl_reservoir import settings
from bl_reservoir.errors import FetchError, ReservoirError, UploadError

log = logging.getLogger(__name__)

INPUT_SCHEMES = ("file", "http", "https", "gs", "gcs", "s3")
#: Seconds to wait before each retry of a transient error (so len + 1 attempts in all).
RETRY_DELAYS: tuple[float, ...] = (0.5, 1.0, 2.0)
_PERMANENT = (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError, ValueError)
# Worth a retry even when a library wraps them in a permanent-looking error (fsspec's HTTP filesystem
# turns a refused connection into FileNotFoundError).
_TRANSIENT = (ConnectionError, TimeoutError)

T = TypeVar("T")


def scheme(uri: str) -> str:
    """The URI's scheme in lower case; `file` for a plain path."""
    head, sep, _ = str(uri).partition("://")
    return head.lower() if sep else "file"


def local_path(uri: str) -> Path:
    """The local path of a plain path or `file://` URI."""
    return Path(str(uri).removeprefix("file://")).expanduser()


def filesystem(uri: str) -> Any:
    """The fsspec filesystem for a remote URI, pointed at an emulator when the environment names one;
    `FetchError` for an http(s) host the allow-list refuses."""
    import fsspec

    protocol = scheme(uri)
    options: dict[str, Any] = {}
    if protocol in ("http", "https"):
        from bl_reservoir.io import hosts

        hosts.check_url(uri)
        options["get_client"] = hosts.guarded_client
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
        except Exception as exc:  # network stacks raise many types; all but the permanent are worth a retry
            if delay is None or _permanent(exc):
                raise
            log.info("%s failed (%s: %s); retry %d in %.1f s", what, type(exc).__name__, exc, attempt + 1, delay)
            time.sleep(delay)
    raise AssertionError("unreachable")


def _chain(exc: BaseException | None) -> Iterator[BaseException]:
    """`exc`, then its causes and contexts, each once."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def _in_chain(exc: BaseException, kinds: type | tuple[type, ...]) -> BaseException | None:
    """The first exception of `kinds` among `exc` and its causes and contexts."""
    return next((e for e in _chain(exc) if isinstance(e, kinds)), None)


def _permanent(exc: BaseException) -> bool:
    """A refusal of ours (the host allow-list) or a missing file is permanent; a lost connection is not."""
    if _in_chain(exc, ReservoirError) is not None:
        return True
    return _in_chain(exc, _TRANSIENT) is None and isinstance(exc, _PERMANENT)


def _failure(uri: str, exc: BaseException, doing: str, attempts: int) -> ReservoirError:
    """One line for a failed access to `uri`: our own refusal as it is, a refused connection by that name,
    a missing file as missing, anything else with its innermost network error."""
    ours = _in_chain(exc, ReservoirError)
    if ours is not None:
        same = isinstance(ours, FetchError) and ours.uri == uri
        return ours if same else FetchError(uri, getattr(ours, "reason", None) or str(ours))
    # aiohttp's connection errors carry the host and port they tried
    connect = next((e for e in _chain(exc) if isinstance(e, OSError) and hasattr(e, "host") and hasattr(e, "port")),
                   None)
    if _in_chain(exc, ConnectionRefusedError) is not None:
        peer = f" by {connect.host}:{connect.port}" if connect is not None else ""
        return FetchError(uri, f"{doing}: connection refused{peer} ({attempts} attempts)")
    network = connect or _in_chain(exc, _TRANSIENT)
    if network is None and isinstance(exc, FileNotFoundError):
        return FetchError(uri, _missing(scheme(uri)))
    return FetchError(uri, f"{doing} ({reason(network or exc)})")


def reason(exc: BaseException) -> str:
    """`Type: first line of the message`, for one-line errors."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


#: A name that is one folder of a bucket and one segment of a page's URL: letters, digits, `_ . + -`, not
#: starting with `.` or `-`, at most 200 characters, no `..`. One rule for the runner (which refuses an
#: input whose observation name breaks it), the bucket and the web (which serves nothing else).
_SAFE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+\-]{0,199}")


def safe_name(value: str) -> bool:
    """True when `value` is one plain folder or file name (no `..`, `/`, `\\`, spaces, NUL, absolute path)."""
    return bool(_SAFE_NAME.fullmatch(value)) and ".." not in value


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
    except Exception as exc:  # noqa: BLE001 - any backend error becomes one line naming the URI
        raise _failure(uri, exc, "cannot reach the source", len(RETRY_DELAYS) + 1) from None
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
        return Path(os.path.abspath(local_path(uri)))   # not resolved: a symlink keeps its own name (its stem)
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
    except Exception as exc:  # noqa: BLE001 - any backend error becomes one line naming the URI
        raise _failure(uri, exc, "download failed", len(RETRY_DELAYS) + 1) from None
    finally:
        partial.unlink(missing_ok=True)
    log.info("fetched %s (%d bytes) to %s", uri, size, target)
    return target
