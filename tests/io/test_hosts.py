"""Which hosts http(s) inputs may come from (`bl_reservoir.io.hosts`): no private, loopback or
link-local address unless `BL_RESERVOIR_INPUT_HOSTS` lists it, checked before any connection is made,
at every connection and at every redirect.

The session allows 127.0.0.1 (tests/conftest.py); these tests set the variable themselves.
"""

from __future__ import annotations

import http.server
import re
import socket
import threading
from contextlib import contextmanager

import pytest

from bl_reservoir.errors import FetchError, UsageError
from bl_reservoir.io import fetch, hosts


@contextmanager
def listener(host: str = "127.0.0.1"):
    """A listening socket nobody serves: (its port, a function telling whether anyone connected)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        sock.listen(8)
        sock.setblocking(False)

        def connected() -> bool:
            try:
                sock.accept()[0].close()
            except BlockingIOError:
                return False
            return True

        yield sock.getsockname()[1], connected


class _Redirect(http.server.BaseHTTPRequestHandler):
    def do_HEAD(self):
        self.send_response(302)
        self.send_header("Location", self.server.target)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_HEAD

    def log_message(self, format, *args):
        pass


@contextmanager
def redirecting(target: str, host: str = "127.0.0.2"):
    """An http server on `host` answering every request with a 302 to `target`; its base URL."""
    server = http.server.ThreadingHTTPServer((host, 0), _Redirect)
    server.target = target
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://{host}:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def no_filesystem(monkeypatch):
    """Fails the test if an fsspec filesystem is made (the refusal must come first)."""
    import fsspec

    def refuse(*args, **kwargs):
        raise AssertionError("a filesystem was made for a refused input")

    monkeypatch.setattr(fsspec, "filesystem", refuse)


@pytest.mark.parametrize("allowed", [None, "public"])
def test_loopback_is_refused_without_a_connection(monkeypatch, tmp_path, no_filesystem, allowed):
    if allowed is None:
        monkeypatch.delenv("BL_RESERVOIR_INPUT_HOSTS")   # the default: public hosts only
    else:
        monkeypatch.setenv("BL_RESERVOIR_INPUT_HOSTS", allowed)
    with listener() as (port, connected):
        uri = f"http://127.0.0.1:{port}/x.h5"
        expected = (f"^{re.escape(uri)}: 127.0.0.1 is a loopback address, which BL_RESERVOIR_INPUT_HOSTS does not "
                    r"allow for inputs \(add it there to fetch from it\)$")
        with pytest.raises(FetchError, match=expected):
            fetch.fetch_input(uri, cache_dir=tmp_path / "cache")
        with pytest.raises(FetchError, match=expected):
            fetch.input_size(uri)
        named = f"http://localhost:{port}/x.h5"
        with pytest.raises(FetchError, match=r"host localhost resolves to (127\.0\.0\.1|::1), a loopback address"):
            fetch.input_size(named)
        assert not connected()
    assert not (tmp_path / "cache").exists()


@pytest.mark.parametrize(("uri", "kind"), [
    ("http://169.254.169.254/latest/meta-data", "a link-local"),
    ("http://10.0.0.1/x.h5", "a private"),
    ("https://192.168.1.20:8443/x.fil", "a private"),
    ("http://[::1]:8080/x.h5", "a loopback"),
    ("http://[::ffff:169.254.169.254]/latest", "a link-local"),   # IPv4-mapped IPv6
    ("http://0.0.0.0:80/x.h5", "an unspecified"),
])
def test_private_addresses_are_refused_before_any_connection(monkeypatch, no_filesystem, uri, kind):
    monkeypatch.delenv("BL_RESERVOIR_INPUT_HOSTS")
    connects = []
    monkeypatch.setattr(socket.socket, "connect", lambda self, addr: connects.append(addr))
    monkeypatch.setattr(socket.socket, "connect_ex", lambda self, addr: connects.append(addr))
    with pytest.raises(FetchError) as info:
        fetch.input_size(uri)
    message = str(info.value)
    assert message.startswith(f"{uri}: ") and f"is {kind} address, which BL_RESERVOIR_INPUT_HOSTS" in message
    assert "\n" not in message and connects == []


def test_decimal_ipv4_names_resolve_to_what_they_mean(monkeypatch, no_filesystem):
    monkeypatch.delenv("BL_RESERVOIR_INPUT_HOSTS")
    with pytest.raises(FetchError, match=r"host 2130706433 resolves to 127\.0\.0\.1, a loopback address"):
        fetch.input_size("http://2130706433/x.h5")


def test_a_listed_host_is_fetched(monkeypatch, http_root, tmp_path):
    root, url = http_root
    (root / "obs.h5").write_bytes(b"h" * 300)
    port = url.rsplit(":", 1)[1]
    for allowed, uri in [("127.0.0.1", f"{url}/obs.h5"), ("localhost", f"http://localhost:{port}/obs.h5"),
                         ("127.0.0.0/8", f"{url}/obs.h5"), ("http://127.0.0.1", f"{url}/obs.h5")]:
        monkeypatch.setenv("BL_RESERVOIR_INPUT_HOSTS", allowed)
        assert fetch.input_size(uri) == 300, allowed
    got = fetch.fetch_input(f"{url}/obs.h5", cache_dir=tmp_path / "cache")
    assert got.read_bytes() == b"h" * 300
    # an entry with a scheme allows that scheme only
    monkeypatch.setenv("BL_RESERVOIR_INPUT_HOSTS", "https://127.0.0.1")
    with pytest.raises(FetchError, match="127.0.0.1 is a loopback address"):
        fetch.input_size(f"{url}/obs.h5")


def test_a_redirect_to_a_refused_address_is_not_followed(monkeypatch, tmp_path):
    monkeypatch.setenv("BL_RESERVOIR_INPUT_HOSTS", "127.0.0.2")
    with listener("127.0.0.1") as (port, connected):
        for target, refused in [(f"http://127.0.0.1:{port}/x.h5", "redirected to"),
                                (f"http://localhost:{port}/x.h5", f"connection to localhost:{port} refused")]:
            with redirecting(target) as base:
                uri = f"{base}/obs.h5"
                with pytest.raises(FetchError) as info:
                    fetch.fetch_input(uri, cache_dir=tmp_path / "cache")
            message = str(info.value)
            assert message.startswith(f"{uri}: {refused}") and "a loopback address" in message, message
            assert "\n" not in message
        assert not connected()


@pytest.mark.parametrize(("entries", "host", "addresses", "allowed"), [
    ("public", "example.org", ["93.184.215.14"], True),
    ("public", "example.org", ["93.184.215.14", "10.1.1.1"], False),   # every address is checked
    ("public", "mcast.example", ["224.0.0.251"], False),
    ("10.0.0.0/8", "store.internal", ["10.20.30.40"], True),
    ("10.0.0.0/8", "store.internal", ["11.0.0.1"], False),
    ("*.archive.test", "data.archive.test", ["10.0.0.9"], True),
    ("*.archive.test", "archive.test.evil", ["10.0.0.9"], False),
    ("Data.Example.ORG", "data.example.org.", ["127.0.0.1"], True),
    ("https://data.example.org", "data.example.org", ["127.0.0.1"], False),   # checked for http below
])
def test_the_allow_list(monkeypatch, entries, host, addresses, allowed):
    monkeypatch.setenv("BL_RESERVOIR_INPUT_HOSTS", entries)
    assert (hosts.refusal("http", host, addresses) is None) is allowed


def test_a_bad_entry_is_a_usage_error(monkeypatch):
    monkeypatch.setenv("BL_RESERVOIR_INPUT_HOSTS", "ftp://files.example.org")
    with pytest.raises(UsageError, match=r"^BL_RESERVOIR_INPUT_HOSTS: 'ftp://files\.example\.org' is not an entry"):
        hosts.policy()
