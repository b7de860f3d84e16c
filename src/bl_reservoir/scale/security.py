"""How every part of ours reaches the Dask control plane: its TLS (`distributed.security.Security`) and the
one way we open a client.

Anyone who can talk to a Dask scheduler or worker can run code on every worker, so the control plane is
either reachable only from this machine (the embedded cluster and `bl-reservoir worker` bind 127.0.0.1) or
encrypted and mutually authenticated: with `BL_RESERVOIR_TLS_CA_FILE`, `BL_RESERVOIR_TLS_CERT` and
`BL_RESERVOIR_TLS_KEY` set, every scheduler, worker and client of ours presents that certificate, accepts
only peers signed by that CA, and refuses plain TCP. Without them Dask's own configuration applies
(`DASK_DISTRIBUTED__COMM__TLS__*`, `~/.config/dask`), which is plain TCP unless it says otherwise.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bl_reservoir import settings
from bl_reservoir.errors import UsageError

#: Seconds a client waits for the scheduler before saying it cannot reach it.
CONNECT_TIMEOUT_S = 20.0


class SchedulerUnreachable(UsageError):
    """The Dask scheduler did not answer: names its address and the reason."""

    def __init__(self, address: str, reason: str):
        self.address = address
        self.reason = (str(reason).strip().splitlines() or ["no answer"])[0]
        super().__init__(f"cannot reach the Dask scheduler at {address}: {self.reason}")


def dask_security(address: str | None = None, role: str = "client") -> Any:
    """The `Security` of our scheduler, workers and clients; `UsageError` (one line) for certificates that are
    missing, unreadable or not PEM, and for a `tls://` address without any."""
    from distributed.security import Security

    given = settings.tls()
    if given:
        missing = [settings.TLS_ENV[name] for name in settings.TLS_ENV if name not in given]
        if missing:
            raise UsageError(f"TLS for Dask needs {', '.join(settings.TLS_ENV.values())} together: "
                             f"{', '.join(missing)} not set")
        for name, value in given.items():
            if "\n" not in value and not Path(value).expanduser().is_file():   # a path, not the PEM text
                raise UsageError(f"{value}: no such certificate file ({settings.TLS_ENV[name]})")
        files = {k: v if "\n" in v else str(Path(v).expanduser()) for k, v in given.items()}
        found = Security(require_encryption=True, tls_ca_file=files["ca_file"],
                         **{f"tls_{who}_{part}": files[part] for who in ("client", "scheduler", "worker")
                            for part in ("cert", "key")})
    else:
        found = Security()   # Dask's own configuration
    try:
        found.get_connection_args(role)   # load the certificates now: a bad one is one line here, not a traceback later
    except (OSError, ValueError) as exc:
        source = ", ".join(settings.TLS_ENV.values()) if given else "DASK_DISTRIBUTED__COMM__TLS__*"
        raise UsageError(f"the Dask TLS certificates ({source}) cannot be loaded: {exc}") from None
    encrypted = bool(getattr(found, f"tls_{role}_cert", None) and found.tls_ca_file)
    scheme = address.split("://", 1)[0] if address and "://" in address else None
    if scheme == "tls" and not encrypted:
        raise UsageError(f"{address}: a tls:// scheduler needs certificates: set "
                         f"{', '.join(settings.TLS_ENV.values())}")
    if scheme not in (None, "tls", "inproc") and found.require_encryption:
        raise UsageError(f"{address}: TLS is required ({', '.join(settings.TLS_ENV.values())} or Dask's "
                         f"require-encryption), so the scheduler address must be tls://")
    return found


def scheduler_address(address: str, security: Any) -> str:
    """`address` with `tls://` put in front of a bare `host:port` when TLS is on."""
    if "://" not in address and security.require_encryption:
        return f"tls://{address}"
    return address


def connect(address: str, timeout_s: float = CONNECT_TIMEOUT_S, **kw: Any) -> Any:
    """A `distributed.Client` of the scheduler at `address` with our TLS; `SchedulerUnreachable` when it does
    not answer within `timeout_s`."""
    from distributed import Client

    security = dask_security(address)
    address = scheduler_address(address, security)
    try:
        return Client(address, timeout=f"{timeout_s}s", security=security, **kw)
    except OSError as exc:   # refused, timed out (TimeoutError), TLS handshake refused (ssl.SSLError)
        raise SchedulerUnreachable(address, str(exc) or type(exc).__name__) from None
