"""Buckets (contract C3): one suite run against every backend, as fsspec runs its abstract tests.

`bucket_backend` (conftest.py) is an empty local folder, a prefix in the GCS emulator and a prefix
in moto's S3 server in turn; what lands is checked with each backend's own client (_backends.py).
Input fetching is tested in tests/io/test_fetch.py.
"""

from __future__ import annotations

import json
import re
import threading
import time
from pathlib import Path

import pytest

from bl_reservoir import storage
from bl_reservoir.errors import UploadError

RESULT = "GBT_1_fine/pkg/alg"  # the C3 place of every folder _results_dir makes
MANIFEST = f"{RESULT}/manifest.json"


def _results_dir(tmp_path: Path, n_files: int = 3, size: int = 1000, name: str = "res", version: str = "1",
                 fill: int = 0) -> Path:
    """A folder shaped like a result: body files `partNN.bin` of `size` bytes `(NN + fill) % 251`, and
    a manifest naming its input and algorithm."""
    folder = tmp_path / name
    folder.mkdir()
    for i in range(n_files):
        (folder / f"part{i:02d}.bin").write_bytes(bytes([(i + fill) % 251]) * size)
    manifest = {"schema": 1, "algorithm": {"package": "pkg", "name": "alg", "version": version},
                "input": {"uri": "gs://data/GBT_1_fine.h5", "size_bytes": 123}}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


def _keys(folder: Path) -> set[str]:
    """Where the files of `folder` belong in a bucket."""
    return {f"{RESULT}/{p.name}" for p in folder.iterdir()}


def _watch(backend, action) -> list[set[str]]:
    """What a reader listing the backend over and over sees while `action()` runs, then once after."""
    seen: list[set[str]] = []
    done = threading.Event()

    def poll() -> None:
        while not done.is_set():
            seen.append(backend.keys())
            time.sleep(0.001)

    reader = threading.Thread(target=poll)
    reader.start()
    try:
        action()
    finally:
        done.set()
        reader.join()
    seen.append(backend.keys())
    return seen


# ---------------------------------------------------------------- on every backend

def test_upload_dir_puts_the_folder_at_its_c3_place(bucket_backend, tmp_path):
    folder = _results_dir(tmp_path)
    dest = storage.result_uri(bucket_backend.uri(), "GBT_1_fine", "pkg", "alg")
    assert storage.is_complete(dest) is None
    assert storage.upload_dir(bucket_backend.uri(), folder) == dest == bucket_backend.uri(RESULT)
    assert bucket_backend.keys() == {f"{RESULT}/{n}" for n in ("manifest.json", "part00.bin", "part01.bin",
                                                                "part02.bin")}
    assert bucket_backend.get(f"{RESULT}/part01.bin") == bytes([1]) * 1000
    assert storage.is_complete(dest) == json.loads((folder / "manifest.json").read_text())


def test_a_reader_never_sees_the_manifest_before_every_other_file(bucket_backend, tmp_path):
    folder = _results_dir(tmp_path, n_files=24, size=300_000)
    seen = _watch(bucket_backend, lambda: storage.upload_dir(bucket_backend.uri(), folder))
    for keys in seen:
        if MANIFEST in keys:
            assert keys == _keys(folder)
    assert seen[-1] == _keys(folder)
    assert any(keys and MANIFEST not in keys for keys in seen), "the reader never saw the upload in progress"


def test_reupload_replaces_the_old_result(bucket_backend, tmp_path):
    dest = storage.upload_dir(bucket_backend.uri(), _results_dir(tmp_path, n_files=3, name="old"))
    new = _results_dir(tmp_path, n_files=1, name="new", version="2", fill=7)
    assert storage.upload_dir(bucket_backend.uri(), new) == dest
    assert bucket_backend.keys() == {f"{RESULT}/manifest.json", f"{RESULT}/part00.bin"}  # no stale parts
    assert bucket_backend.get(f"{RESULT}/part00.bin") == bytes([7]) * 1000
    assert storage.is_complete(dest)["algorithm"]["version"] == "2"


class _RecordingFS:
    """An fsspec filesystem that notes, in order, every path it is asked to delete."""

    def __init__(self, fs):
        self._fs = fs
        self.removed: list[str] = []

    def __getattr__(self, name):
        return getattr(self._fs, name)

    def rm_file(self, path, **kw):
        self.removed.append(path)
        return self._fs.rm_file(path, **kw)

    def rm(self, path, recursive=False, **kw):
        self.removed.extend(self._fs.find(path) if recursive else [path])
        return self._fs.rm(path, recursive=recursive, **kw)


def test_remove_result_takes_the_manifest_down_first_then_everything(bucket_backend, tmp_path, monkeypatch):
    folder = _results_dir(tmp_path, n_files=24, size=1000)
    dest = storage.upload_dir(bucket_backend.uri(), folder)
    original, opened = storage.open_bucket, []

    def open_bucket(uri):
        fs, root = original(uri)
        opened.append(_RecordingFS(fs))
        return opened[-1], root

    monkeypatch.setattr(storage, "open_bucket", open_bucket)
    seen = _watch(bucket_backend, lambda: storage.remove_result(dest))
    removed = [path for fs in opened for path in fs.removed]
    assert removed[0].endswith(f"{RESULT}/manifest.json"), removed
    assert {p.rsplit("/", 1)[-1] for p in removed} == {p.name for p in folder.iterdir()}
    for keys in seen:  # and a reader listing the bucket meanwhile agrees
        if MANIFEST in keys:
            assert keys == _keys(folder), "the manifest outlived another file"
    assert seen[-1] == set()
    if bucket_backend.name != "local":  # local removal is over in well under a millisecond: no poll sees it
        assert any(keys and MANIFEST not in keys for keys in seen), "the reader never saw the removal in progress"
    assert storage.is_complete(dest) is None
    storage.remove_result(dest)  # nothing there: nothing to do


def test_read_results_reads_the_uploaded_folder_back(bucket_backend, tmp_path):
    import numpy as np
    import pandas as pd

    from bl_reservoir.results import build_manifest, read_results, write_results

    header = {"fch1": 1500.0, "foff": -2.7939677238464355e-06, "nchans": 8192, "tsamp": 18.253611008,
              "source_name": "HIP1"}
    hits = pd.DataFrame({"index": [10, 4100], "freqs": [1499.99997, 1499.98854], "coarse_channel": [0, 1],
                         "snr": [25.0, 40.5]})
    stamps = np.random.default_rng(2).normal(size=(2, 16, 64)).astype(np.float32)
    manifest = build_manifest(algorithm={"package": "pkg", "name": "alg", "version": "1"},
                              input_uri="gs://data/GBT_1_fine.h5", input_size=123)
    out = write_results(tmp_path / "res", header, hits, stamps, manifest)
    dest = storage.upload_dir(bucket_backend.uri(), out)
    back = read_results(dest)
    pd.testing.assert_frame_equal(back.hits, hits)
    np.testing.assert_array_equal(back.stamps, stamps)
    assert back.header == header
    assert back.manifest == read_results(out).manifest == storage.is_complete(dest)


# ---------------------------------------------------------------- errors

def _unreachable(kind: str, tmp_path: Path, monkeypatch) -> str:
    """A bucket URI that cannot be reached, on backend `kind` (a folder under a file; a port nobody serves)."""
    if kind == "local":
        (tmp_path / "a-file").write_text("not a folder")
        return str(tmp_path / "a-file" / "bucket" / RESULT)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens on the discard port
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    return f"s3://nowhere/{RESULT}"


# Not gs://: gcsfs retries a refused connection itself, with backoff, for over a minute.
@pytest.mark.parametrize("kind", ["local", "s3"])
def test_an_unreachable_bucket_is_an_upload_error_naming_the_uri(kind, tmp_path, monkeypatch):
    from bl_reservoir.io import fetch

    monkeypatch.setattr(fetch, "RETRY_DELAYS", (0.01,))
    uri = _unreachable(kind, tmp_path, monkeypatch)
    with pytest.raises(UploadError, match=rf"^{re.escape(uri)}: cannot reach the bucket \("):
        storage.is_complete(uri)


@pytest.mark.parametrize("uri", ["http://example.org/bucket", "https://example.org/bucket", "ftp://host/bucket"])
def test_other_bucket_schemes_are_refused(uri, tmp_path):
    scheme = uri.split("://")[0]
    with pytest.raises(UploadError, match=rf"scheme {scheme}:// is not supported for buckets"):
        storage.open_bucket(uri)
    with pytest.raises(UploadError, match=rf"scheme {scheme}:// is not supported for buckets"):
        storage.upload_dir(uri, _results_dir(tmp_path))


def test_upload_of_a_missing_folder(tmp_path):
    with pytest.raises(UploadError, match=r"nothing: results folder does not exist"):
        storage.upload_dir(str(tmp_path / "bucket"), tmp_path / "nothing")
    assert not (tmp_path / "bucket").exists()


# ---------------------------------------------------------------- local folders

def test_upload_dir_to_a_relative_folder_c6_form(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    folder = _results_dir(tmp_path)
    dest = storage.upload_dir("bl-scale", folder)  # as the original README shows
    assert dest == f"bl-scale/{RESULT}"
    placed = tmp_path / "bl-scale" / RESULT
    assert sorted(p.name for p in placed.iterdir()) == ["manifest.json", "part00.bin", "part01.bin", "part02.bin"]
    assert storage.is_complete(dest)["algorithm"]["name"] == "alg"


def test_result_uri():
    assert storage.result_uri("s3://b/", "obs", "pkg", "alg") == "s3://b/obs/pkg/alg"
    assert storage.result_uri("bl-scale", "obs", "pkg", "alg") == "bl-scale/obs/pkg/alg"
