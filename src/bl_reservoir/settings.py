"""Settings (contract C5), resolved in one place: the flag if given, then the environment, then a default."""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_BUCKET = "./bl-scale"


def _env(name: str) -> str | None:
    value = os.environ.get(name, "").strip()
    return value or None


def bucket(flag: str | None = None) -> str:
    """Bucket URI: `--bucket`, then `BL_RESERVOIR_BUCKET`, then `./bl-scale` (a local folder)."""
    return flag or _env("BL_RESERVOIR_BUCKET") or DEFAULT_BUCKET


def algorithm_dirs(flag: str | None = None) -> list[Path]:
    """Folders searched for external algorithm packages (`BL_RESERVOIR_ALGORITHMS`, colon-separated)."""
    value = flag or _env("BL_RESERVOIR_ALGORITHMS") or ""
    return [Path(p).expanduser() for p in value.split(":") if p]


def db_url(flag: str | None = None, bucket_uri: str | None = None) -> str:
    """SQLAlchemy URL of the job store: `--db`, then `BL_RESERVOIR_DB`, then a SQLite file beside
    a local bucket (`./bl-scale.db` for `./bl-scale`), or in the working folder for a remote one."""
    explicit = flag or _env("BL_RESERVOIR_DB")
    if explicit:
        return explicit
    uri = bucket(bucket_uri)
    if "://" in uri and not uri.startswith("file://"):
        return f"sqlite:///{Path('bl-reservoir.db').resolve()}"
    local = Path(uri.removeprefix("file://")).expanduser().resolve()
    return f"sqlite:///{local.parent / (local.name + '.db')}"


def scheduler(flag: str | None = None) -> str | None:
    """Dask scheduler address: `--scheduler`, then `DASK_SCHEDULER_ADDRESS`; None means a LocalCluster."""
    return flag or _env("DASK_SCHEDULER_ADDRESS")


def token() -> str | None:
    """Bearer token that write endpoints of the web API require (`BL_RESERVOIR_TOKEN`)."""
    return _env("BL_RESERVOIR_TOKEN")


def input_hosts() -> str | None:
    """Hosts `http(s)://` inputs may come from (`BL_RESERVOIR_INPUT_HOSTS`, comma-separated; the entries
    are described in `bl_reservoir.io.hosts`); None means any public host."""
    return _env("BL_RESERVOIR_INPUT_HOSTS")


def cache_dir() -> Path:
    """Local cache for downloaded inputs and algorithm environments (`BL_RESERVOIR_CACHE`)."""
    value = _env("BL_RESERVOIR_CACHE")
    return Path(value).expanduser() if value else Path.home() / ".cache" / "bl-reservoir"


def kernels() -> str:
    """How the de-Doppler kernels run (`BL_RESERVOIR_KERNELS`): `aot`, compiled ahead of time for this
    machine when it can be (the default), or `jit`, numba's JIT only."""
    value = (_env("BL_RESERVOIR_KERNELS") or "aot").lower()
    if value not in ("aot", "jit"):
        from bl_reservoir.errors import UsageError

        raise UsageError(f"BL_RESERVOIR_KERNELS must be aot or jit, not {value!r}")
    return value


#: The Dask control plane's TLS settings (each a path to a PEM file, or the PEM text itself, as Dask takes them).
TLS_ENV = {"ca_file": "BL_RESERVOIR_TLS_CA_FILE", "cert": "BL_RESERVOIR_TLS_CERT", "key": "BL_RESERVOIR_TLS_KEY"}


def tls() -> dict[str, str]:
    """The TLS certificates our Dask scheduler, workers and clients use, by role-free name (`ca_file`, `cert`,
    `key`): `BL_RESERVOIR_TLS_CA_FILE`, `BL_RESERVOIR_TLS_CERT`, `BL_RESERVOIR_TLS_KEY`; only those set. None set
    means Dask's own configuration decides (`DASK_DISTRIBUTED__COMM__TLS__*`, plain TCP by default)."""
    found = {"ca_file": _env("BL_RESERVOIR_TLS_CA_FILE"), "cert": _env("BL_RESERVOIR_TLS_CERT"),
             "key": _env("BL_RESERVOIR_TLS_KEY")}
    return {name: value for name, value in found.items() if value}


def worker_host(flag: str | None = None) -> str:
    """Address `bl-reservoir worker` listens on: `--host`, then `BL_RESERVOIR_WORKER_HOST`, then `127.0.0.1`
    (this machine only: a Dask worker runs what anyone who reaches it sends)."""
    return flag or _env("BL_RESERVOIR_WORKER_HOST") or "127.0.0.1"
