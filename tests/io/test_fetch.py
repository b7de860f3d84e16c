"""Inputs from anywhere (`bl_reservoir.io.fetch`): local paths, and one suite run against every
remote source (`input_backend` in conftest.py: http.server, the GCS emulator, moto's S3 server)."""

from __future__ import annotations

import re

import pytest

from bl_reservoir.errors import FetchError
from bl_reservoir.io import fetch

# ---------------------------------------------------------------- local files


def test_local_path_and_file_uri_give_the_file_itself(tmp_path):
    data = tmp_path / "obs.h5"
    data.write_bytes(b"abc")
    assert fetch.fetch_input(str(data)) == data.resolve()
    assert fetch.fetch_input(f"file://{data}") == data.resolve()
    assert fetch.input_size(str(data)) == fetch.input_size(f"file://{data}") == 3


def test_a_symlinked_input_keeps_its_name(tmp_path, monkeypatch):
    """The algorithm gets `obs_1.h5`, not the link's target: its `.dat` and default folder take that stem."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ho.h5").write_bytes(b"abc")
    (tmp_path / "obs_1.h5").symlink_to("ho.h5")
    assert fetch.fetch_input("obs_1.h5") == tmp_path / "obs_1.h5"


def test_a_missing_local_file(tmp_path):
    with pytest.raises(FetchError, match=r"nope\.h5: no such file"):
        fetch.fetch_input(str(tmp_path / "nope.h5"))
    with pytest.raises(FetchError, match=r"nope\.h5: no such file"):
        fetch.input_size(f"file://{tmp_path / 'nope.h5'}")


@pytest.mark.parametrize("uri", ["ftp://host/obs.h5", "ssh://host/obs.h5", "hdfs://x/obs.h5"])
def test_other_schemes_are_refused(uri, tmp_path):
    with pytest.raises(FetchError, match=r"scheme .*:// is not supported for inputs"):
        fetch.fetch_input(uri, cache_dir=tmp_path / "cache")
    with pytest.raises(FetchError, match=r"scheme .*:// is not supported for inputs"):
        fetch.input_size(uri)
    assert not (tmp_path / "cache").exists()


# ---------------------------------------------------------------- on every remote source

def test_download_is_checked_and_then_reused(input_backend, tmp_path):
    input_backend.put("inputs/obs.fil", b"x" * 5000)
    uri = input_backend.uri("inputs/obs.fil")
    assert fetch.input_size(uri) == 5000
    got = fetch.fetch_input(uri, cache_dir=tmp_path / "cache")
    assert got == tmp_path / "cache" / "obs.fil"
    assert got.read_bytes() == b"x" * 5000
    assert [p.name for p in (tmp_path / "cache").iterdir()] == ["obs.fil"]  # no .part left
    # A copy of the right size is reused, not downloaded again (the reuse rule is the size).
    input_backend.put("inputs/obs.fil", b"y" * 5000)
    assert fetch.fetch_input(uri, cache_dir=tmp_path / "cache") == got
    assert got.read_bytes() == b"x" * 5000
    # One of another size is replaced.
    input_backend.put("inputs/obs.fil", b"z" * 777)
    assert fetch.fetch_input(uri, cache_dir=tmp_path / "cache").read_bytes() == b"z" * 777


def test_a_download_of_the_wrong_size_is_refused_and_not_kept(input_backend, tmp_path, monkeypatch):
    input_backend.put("inputs/obs.h5", b"w" * 4321)
    monkeypatch.setattr(fetch, "input_size", lambda uri: 1000)  # as if the file changed since it was sized
    uri = input_backend.uri("inputs/obs.h5")
    with pytest.raises(FetchError, match=rf"^{re.escape(uri)}: downloaded 4321 bytes but the source has 1000$"):
        fetch.fetch_input(uri, cache_dir=tmp_path / "cache")
    assert list((tmp_path / "cache").iterdir()) == []


def test_a_missing_object(input_backend, tmp_path):
    input_backend.put("inputs/obs.h5", b"y")  # the folder exists, the file does not
    uri = input_backend.uri("inputs/missing.h5")
    message = f"^{re.escape(uri)}: {re.escape(input_backend.missing)}$"
    with pytest.raises(FetchError, match=message):
        fetch.fetch_input(uri, cache_dir=tmp_path / "cache")
    with pytest.raises(FetchError, match=message):
        fetch.input_size(uri)
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())


# ---------------------------------------------------------------- http

@pytest.mark.services
def test_http_retries_transient_errors(tmp_path, monkeypatch):
    from _servers import http_server

    monkeypatch.setattr(fetch, "RETRY_DELAYS", (0.01, 0.01, 0.01))
    (tmp_path / "obs.h5").write_bytes(b"w" * 2048)
    with http_server(tmp_path, fail_first=2) as url:
        got = fetch.fetch_input(f"{url}/obs.h5", cache_dir=tmp_path / "cache")
    assert got.read_bytes() == b"w" * 2048
    with http_server(tmp_path, fail_first=10) as url, pytest.raises(FetchError, match=r"obs\.h5: download failed .*503"):
        fetch.fetch_input(f"{url}/obs.h5", cache_dir=tmp_path / "cache2")


# ---------------------------------------------------------------- a source that refuses connections

def _retries(caplog) -> int:
    return sum("failed" in r.getMessage() and "; retry" in r.getMessage() for r in caplog.records)


def test_a_refused_http_connection_is_retried_and_named(tmp_path, monkeypatch, caplog, capsys):
    from _servers import free_port

    from bl_reservoir.cli import main

    monkeypatch.setattr(fetch, "RETRY_DELAYS", (0.01, 0.01))
    port = free_port()   # nothing listens there: every connection is refused
    uri = f"http://127.0.0.1:{port}/obs.h5"
    expected = f"{uri}: cannot reach the source: connection refused by 127.0.0.1:{port} (3 attempts)"
    with caplog.at_level("INFO", logger="bl_reservoir.io.fetch"):
        with pytest.raises(FetchError) as info:
            fetch.fetch_input(uri, cache_dir=tmp_path / "cache")
    assert str(info.value) == expected
    assert _retries(caplog) == 2
    assert main(["info", uri]) == FetchError.exit_code
    captured = capsys.readouterr()
    assert captured.err.strip().splitlines()[-1] == f"bl-reservoir: error: {expected}"
    assert "Traceback" not in captured.err and captured.out == ""


@pytest.mark.services
@pytest.mark.parametrize("kind", [pytest.param("gs", marks=pytest.mark.slow), "s3"])
def test_a_refused_bucket_connection_is_retried_and_named(kind, monkeypatch, caplog):
    """gcsfs retries inside each attempt too (about 33 s; s3fs's retries are cut to one): two attempts of ours."""
    from _servers import free_port

    endpoint = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("STORAGE_EMULATOR_HOST" if kind == "gs" else "AWS_ENDPOINT_URL", endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    monkeypatch.setattr(fetch, "RETRY_DELAYS", (0.01,))
    uri = f"{kind}://bl-test/obs.h5"
    with caplog.at_level("INFO", logger="bl_reservoir.io.fetch"):
        with pytest.raises(FetchError) as info:
            fetch.input_size(uri)
    message = str(info.value)
    assert re.fullmatch(rf"{re.escape(uri)}: cannot reach the source: connection refused( by 127\.0\.0\.1:\d+)? "
                        r"\(2 attempts\)", message), message
    assert _retries(caplog) == 1


# ---------------------------------------------------------------- names

def test_obs_name_drops_folder_extension_and_query():
    assert fetch.obs_name("gs://b/x/GBT_58402_67632_HIP65057_fine.h5") == "GBT_58402_67632_HIP65057_fine"
    assert fetch.obs_name("https://h/a/b.fil?sig=1") == "b"
    assert fetch.obs_name("/data/obs") == "obs"


@pytest.mark.parametrize(("uri", "scheme"), [("/a/b.h5", "file"), ("file:///a/b.h5", "file"), ("HTTPS://h/b", "https"),
                                             ("gs://b/o", "gs"), ("s3://b/o", "s3")])
def test_scheme(uri, scheme):
    assert fetch.scheme(uri) == scheme
