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
