"""Which hosts an `http(s)://` input may come from: a guard against server-side request forgery.

A campaign's inputs are URIs anyone with the web token may choose, and workers fetch them from
inside the cluster; left open, `http://169.254.169.254/...` or `http://10.0.0.5/admin` would be
fetched with the cluster's network position. `BL_RESERVOIR_INPUT_HOSTS` (comma-separated, read by
`settings.input_hosts`) lists what is allowed; unset, it is `public`. Entries:

    public            any host whose every address is public (not private, loopback, link-local,
                      reserved, multicast or unspecified)
    data.example.org  that host name, whatever it resolves to; `*.example.org` its sub-domains
    10.1.2.3          that address; `10.0.0.0/8` and `fd00::/8` those networks

An entry may carry a scheme, `https://data.example.org`, to allow only that one. A host name is
resolved and every address checked, before the request (`check_url`) and again at each connection
(`guarded_client`, the aiohttp session of every http(s) filesystem: its resolver and its redirect
hook), so neither a redirect nor a name that changes its answer gets round the list.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import aiohttp
import yarl
from aiohttp.abc import AbstractResolver
from aiohttp.resolver import DefaultResolver

from bl_reservoir import settings
from bl_reservoir.errors import FetchError, UsageError

PUBLIC = "public"
HTTP_SCHEMES = ("http", "https")
_Address = ipaddress.IPv4Address | ipaddress.IPv6Address
_Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class _Entry:
    """One allow-list entry: a scheme (None: both) and one of a name, a network, or `public`."""

    scheme: str | None
    name: str | None = None
    network: _Network | None = None
    public: bool = False

    def allows_name(self, scheme: str, host: str) -> bool:
        if self.name is None or self.scheme not in (None, scheme):
            return False
        return host == self.name or (self.name.startswith("*.") and host.endswith(self.name[1:]))

    def allows_address(self, scheme: str, address: _Address) -> bool:
        if self.scheme not in (None, scheme):
            return False
        if self.network is not None:
            return address in self.network
        return self.public and address.is_global and not address.is_multicast


def _entry(text: str) -> _Entry:
    scheme, sep, rest = text.partition("://")
    scheme, target = (scheme.lower(), rest) if sep else (None, text)
    if scheme not in (None, *HTTP_SCHEMES):
        raise UsageError(f"BL_RESERVOIR_INPUT_HOSTS: {text!r} is not an entry (host names, addresses, networks "
                         "or 'public', each optionally prefixed with http:// or https://)")
    target = target.strip().strip("/").lower()
    if target == PUBLIC:
        return _Entry(scheme, public=True)
    try:
        return _Entry(scheme, network=ipaddress.ip_network(target.strip("[]"), strict=False))
    except ValueError:
        return _Entry(scheme, name=target)


def policy() -> tuple[_Entry, ...]:
    """The allow-list in force (`BL_RESERVOIR_INPUT_HOSTS`, else `public`)."""
    value = settings.input_hosts() or PUBLIC
    return tuple(_entry(part.strip()) for part in value.split(",") if part.strip())


def _address(text: str) -> _Address:
    address = ipaddress.ip_address(text.split("%", 1)[0])  # drop an IPv6 zone
    mapped = getattr(address, "ipv4_mapped", None)
    return mapped or address


def refusal(scheme: str, host: str, addresses: Iterable[str], entries: tuple[_Entry, ...] | None = None
            ) -> str | None:
    """Why `host` (resolved to `addresses`) may not be fetched over `scheme`; None when it may."""
    entries = policy() if entries is None else entries
    host = host.lower().rstrip(".")
    if any(e.allows_name(scheme, host) for e in entries):
        return None
    addresses = list(addresses)
    if not addresses:
        return f"host {host} has no address"
    for text in addresses:
        address = _address(text)
        if not any(e.allows_address(scheme, address) for e in entries):
            what = f"{address} is" if host == text.lower() else f"host {host} resolves to {address},"
            return (f"{what} {_kind(address)} address, which BL_RESERVOIR_INPUT_HOSTS does not allow for "
                    "inputs (add it there to fetch from it)")
    return None


def _kind(address: _Address) -> str:
    for kind in ("loopback", "link_local", "unspecified", "multicast", "private", "reserved"):
        if getattr(address, f"is_{kind}"):
            return ("an " if kind == "unspecified" else "a ") + kind.replace("_", "-")
    return "a public" if address.is_global else "a non-public"


def _is_address(host: str) -> bool:
    try:
        _address(host)
    except ValueError:
        return False
    return True


def _resolve(host: str, port: int | None) -> list[str]:
    found = socket.getaddrinfo(host, port or 0, type=socket.SOCK_STREAM)
    return sorted({info[4][0] for info in found})


def check_url(uri: str) -> None:
    """Raise `FetchError` unless the http(s) `uri`'s host is allowed; resolves it (no connection made).
    yarl parses it, as aiohttp will: one parser, so the host checked is the host fetched."""
    try:
        url = yarl.URL(uri)
    except ValueError as exc:
        raise FetchError(uri, f"not a valid URL ({exc})") from None
    scheme, host = (url.scheme or "").lower(), url.host
    if scheme not in HTTP_SCHEMES or not host:
        raise FetchError(uri, "not an http(s) URL with a host")
    entries = policy()
    if any(e.allows_name(scheme, host.lower().rstrip(".")) for e in entries):
        return
    if _is_address(host):
        addresses = [host]
    else:
        try:
            addresses = _resolve(host, url.port)
        except OSError as exc:
            raise FetchError(uri, f"cannot resolve host {host} ({exc})") from None
    reason = refusal(scheme, host, addresses, entries)
    if reason:
        raise FetchError(uri, reason)


# -- the aiohttp session of http(s) filesystems: the same check at every connection ----------------

def _check_address_url(url: Any, doing: str) -> None:
    """Check a URL whose host is an address (aiohttp resolves no such host, so the resolver never sees it)."""
    host = url.host or ""
    if _is_address(host):
        reason = refusal((url.scheme or "").lower(), host, [host])
        if reason:
            raise FetchError(str(url), f"{doing} {url}: {reason}")


async def _on_request_start(session: Any, context: Any, params: Any) -> None:
    _check_address_url(params.url, "request to")


async def _on_request_redirect(session: Any, context: Any, params: Any) -> None:
    location = params.response.headers.get("Location")
    if location:
        _check_address_url(params.response.url.join(yarl.URL(location)), "redirected to")


class _GuardedResolver(AbstractResolver):
    """The default resolver, refusing a name whose addresses the allow-list does not allow."""

    def __init__(self) -> None:
        self._inner = DefaultResolver()

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET) -> Any:
        found = await self._inner.resolve(host, port, family)
        # the scheme is not known here: allowed for either passes (check_url has checked the scheme)
        reasons = [refusal(scheme, host, [r["host"] for r in found]) for scheme in HTTP_SCHEMES]
        if all(reasons):
            raise FetchError(f"{host}:{port}", f"connection to {host}:{port} refused: {reasons[0]}")
        return found

    async def close(self) -> None:
        await self._inner.close()


async def guarded_client(**kwargs: Any) -> Any:
    """An aiohttp session for fsspec's HTTP filesystem (`get_client=`) that applies the allow-list to
    every name it resolves, every address it is asked for and every redirect it follows."""
    trace = aiohttp.TraceConfig()
    trace.on_request_start.append(_on_request_start)
    trace.on_request_redirect.append(_on_request_redirect)
    connector = aiohttp.TCPConnector(resolver=_GuardedResolver())
    return aiohttp.ClientSession(connector=connector, trace_configs=[trace], **kwargs)
