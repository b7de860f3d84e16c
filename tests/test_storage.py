"""Storage against real services: local folders, http.server, the GCS emulator and moto's S3 server."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from bl_reservoir import storage
from bl_reservoir.errors import FetchError, UploadError

pytestmark = pytest.mark.services


def _results_dir(tmp_path: Path, n_files: int = 3, size: int = 1000, name: str = "res") -> Path:
    """A folder shaped like a result: some body files and a manifest naming its input and algorithm."""
    folder = tmp_path / name
    folder.mkdir()
    for i in range(n_files):
        (folder / f"part{i:02d}.bin").write_bytes(bytes([i % 251]) * size)
    manifest = {"schema": 1, "algorithm": {"package": "pkg", "name": "alg", "version": "1"},
                "input": {"uri": "gs://data/GBT_1_fine.h5", "size_bytes": 123}}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


# ---------------------------------------------------------------- inputs

def test_fetch_local_path_and_file_uri_return_the_file_itself(tmp_path):
    data = tmp_path / "obs.h5"
    data.write_bytes(b"abc")
    assert storage.fetch_input(str(data)) == data.resolve()
    assert storage.fetch_input(f"file://{data}") == data.resolve()
    assert storage.input_size(f"file://{data}") == 3


def test_fetch_missing_local_file(tmp_path):
    with pytest.raises(FetchError, match=r"nope\.h5: no such file"):
        storage.fetch_input(str(tmp_path / "nope.h5"))


@pytest.mark.parametrize("uri", ["ftp://host/obs.h5", "ssh://host/obs.h5", "hdfs://x/obs.h5"])
def test_fetch_refuses_other_schemes(uri, tmp_path):
    with pytest.raises(FetchError, match=r"scheme .*:// is not supported for inputs"):
        storage.fetch_input(uri, cache_dir=tmp_path / "cache")
    assert not (tmp_path / "cache").exists()


def test_fetch_http_checks_size_and_reuses_the_copy(http_root, tmp_path):
    root, url = http_root
    (root / "obs.fil").write_bytes(b"x" * 5000)
    got = storage.fetch_input(f"{url}/obs.fil", cache_dir=tmp_path / "cache")
    assert got == tmp_path / "cache" / "obs.fil"
    assert got.read_bytes() == b"x" * 5000
    assert [p.name for p in (tmp_path / "cache").iterdir()] == ["obs.fil"]  # no .part left
    assert storage.fetch_input(f"{url}/obs.fil", cache_dir=tmp_path / "cache") == got


def test_fetch_http_retries_transient_errors(tmp_path, monkeypatch):
    from _servers import http_server

    monkeypatch.setattr(storage, "RETRY_DELAYS", (0.01, 0.01, 0.01))
    (tmp_path / "obs.h5").write_bytes(b"w" * 2048)
    with http_server(tmp_path, fail_first=2) as url:
        got = storage.fetch_input(f"{url}/obs.h5", cache_dir=tmp_path / "cache")
    assert got.read_bytes() == b"w" * 2048
    with http_server(tmp_path, fail_first=10) as url, pytest.raises(FetchError, match=r"obs\.h5: download failed .*503"):
        storage.fetch_input(f"{url}/obs.h5", cache_dir=tmp_path / "cache2")


def test_fetch_http_404(http_root, tmp_path):
    _, url = http_root
    with pytest.raises(FetchError, match=r"/missing\.h5: not found \(404\)"):
        storage.fetch_input(f"{url}/missing.h5", cache_dir=tmp_path / "cache")
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())


def test_fetch_gs_object(gcs_env, tmp_path):
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage as gcs

    client = gcs.Client(project="test", credentials=AnonymousCredentials())
    client.bucket(gcs_env.bucket).blob("inputs/obs.h5").upload_from_string(b"y" * 4321)
    got = storage.fetch_input(f"gs://{gcs_env.bucket}/inputs/obs.h5", cache_dir=tmp_path / "cache")
    assert got.read_bytes() == b"y" * 4321
    with pytest.raises(FetchError, match="no such object"):
        storage.fetch_input(f"gs://{gcs_env.bucket}/inputs/none.h5", cache_dir=tmp_path / "cache")


def test_fetch_s3_object(s3_env, tmp_path):
    import boto3

    boto3.client("s3").put_object(Bucket=s3_env.bucket, Key="inputs/obs.fil", Body=b"z" * 777)
    got = storage.fetch_input(f"s3://{s3_env.bucket}/inputs/obs.fil", cache_dir=tmp_path / "cache")
    assert got.read_bytes() == b"z" * 777


def test_obs_name_drops_folder_extension_and_query():
    assert storage.obs_name("gs://b/x/GBT_58402_67632_HIP65057_fine.h5") == "GBT_58402_67632_HIP65057_fine"
    assert storage.obs_name("https://h/a/b.fil?sig=1") == "b"
    assert storage.result_uri("s3://b/", "obs", "pkg", "alg") == "s3://b/obs/pkg/alg"


# ---------------------------------------------------------------- buckets

def test_upload_dir_local_bucket_c6_form(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    folder = _results_dir(tmp_path)
    dest = storage.upload_dir("bl-scale", folder)  # as the original README shows
    assert dest == "bl-scale/GBT_1_fine/pkg/alg"
    placed = tmp_path / "bl-scale" / "GBT_1_fine" / "pkg" / "alg"
    assert sorted(p.name for p in placed.iterdir()) == ["manifest.json", "part00.bin", "part01.bin", "part02.bin"]
    assert storage.is_complete(dest)["algorithm"]["name"] == "alg"


def test_reupload_removes_the_old_result_first(tmp_path):
    bucket = tmp_path / "bucket"
    old = _results_dir(tmp_path, n_files=3, name="old")
    dest = storage.upload_dir(str(bucket), old)
    new = _results_dir(tmp_path, n_files=1, name="new")
    assert storage.upload_dir(str(bucket), new) == dest
    assert sorted(p.name for p in Path(dest).iterdir()) == ["manifest.json", "part00.bin"]


def test_upload_to_gcs_emulator(gcs_env, tmp_path):
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage as gcs

    folder = _results_dir(tmp_path)
    dest = storage.upload_dir(f"gs://{gcs_env.bucket}", folder)
    assert dest == f"gs://{gcs_env.bucket}/GBT_1_fine/pkg/alg"
    client = gcs.Client(project="test", credentials=AnonymousCredentials())
    names = sorted(b.name for b in client.bucket(gcs_env.bucket).list_blobs(prefix="GBT_1_fine/"))
    assert names == [f"GBT_1_fine/pkg/alg/{n}" for n in ("manifest.json", "part00.bin", "part01.bin", "part02.bin")]
    blob = client.bucket(gcs_env.bucket).blob("GBT_1_fine/pkg/alg/part01.bin")
    assert blob.download_as_bytes() == bytes([1]) * 1000


def test_upload_to_s3(s3_env, tmp_path):
    import boto3

    folder = _results_dir(tmp_path)
    dest = storage.upload_dir(f"s3://{s3_env.bucket}/campaign", folder)
    assert dest == f"s3://{s3_env.bucket}/campaign/GBT_1_fine/pkg/alg"
    listing = boto3.client("s3").list_objects_v2(Bucket=s3_env.bucket, Prefix="campaign/")
    assert sorted(o["Key"] for o in listing["Contents"]) == [
        f"campaign/GBT_1_fine/pkg/alg/{n}" for n in ("manifest.json", "part00.bin", "part01.bin", "part02.bin")]
    assert storage.is_complete(dest)["input"]["uri"] == "gs://data/GBT_1_fine.h5"


def test_unreachable_bucket(monkeypatch, tmp_path):
    monkeypatch.setattr(storage, "RETRY_DELAYS", (0.01,))
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens on the discard port
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    with pytest.raises(UploadError, match=r"s3://nowhere/o/p/n: cannot reach the bucket"):
        storage.is_complete("s3://nowhere/o/p/n")


def test_bucket_scheme_refused():
    with pytest.raises(UploadError, match=r"scheme http:// is not supported for buckets"):
        storage.open_bucket("http://example.org/bucket")


def test_poller_never_sees_manifest_before_every_other_file(s3_env, tmp_path):
    """A reader listing the bucket during an upload sees the manifest only once the rest is there."""
    import boto3

    folder = _results_dir(tmp_path, n_files=24, size=300_000)
    expected = {f"poll/GBT_1_fine/pkg/alg/{p.name}" for p in folder.iterdir()}
    client = boto3.client("s3")
    seen: list[set[str]] = []
    done = threading.Event()

    def poll() -> None:
        while not done.is_set():
            listing = client.list_objects_v2(Bucket=s3_env.bucket, Prefix="poll/")
            seen.append({o["Key"] for o in listing.get("Contents", [])})
            time.sleep(0.002)

    reader = threading.Thread(target=poll)
    reader.start()
    try:
        storage.upload_dir(f"s3://{s3_env.bucket}/poll", folder)
    finally:
        done.set()
        reader.join()
    seen.append({o["Key"] for o in client.list_objects_v2(Bucket=s3_env.bucket, Prefix="poll/")["Contents"]})
    manifest = "poll/GBT_1_fine/pkg/alg/manifest.json"
    for keys in seen:
        if manifest in keys:
            assert keys == expected
    assert seen[-1] == expected
    assert any(keys and manifest not in keys for keys in seen), "the reader never saw the upload in progress"
