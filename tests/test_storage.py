"""Buckets (contract C3): one suite run against every backend, as fsspec runs its abstract tests.

`bucket_backend` (conftest.py) is an empty local folder, a prefix in the GCS emulator and a prefix
in moto's S3 server in turn; what lands is checked with each backend's own client (_backends.py).
Input fetching is tested in tests/io/test_fetch.py.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from bl_reservoir import storage
from bl_reservoir.errors import UploadError

RESULT = "GBT_1_fine/pkg/alg"  # the C3 place of every folder _results_dir makes
MANIFEST = f"{RESULT}/manifest.json"


def _byte(i: int, fill: int) -> bytes:
    """The byte file `partNN.bin` (NN = i) repeats: printable, for the GCS emulator drops an object's last
    byte when it is a carriage return (seen with 13; real GCS keeps it)."""
    return bytes([32 + (i + fill) % 200])


def _results_dir(tmp_path: Path, n_files: int = 3, size: int = 1000, name: str = "res", version: str = "1",
                 fill: int = 0, source: str = "gs://data/GBT_1_fine.h5") -> Path:
    """A folder shaped like a result: body files `partNN.bin` of `size` bytes `_byte(NN, fill)`, and
    a manifest naming its input (`source`) and algorithm."""
    folder = tmp_path / name
    folder.mkdir()
    for i in range(n_files):
        (folder / f"part{i:02d}.bin").write_bytes(_byte(i, fill) * size)
    manifest = {"schema": 1, "algorithm": {"package": "pkg", "name": "alg", "version": version},
                "input": {"uri": source, "size_bytes": 123}}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


def _keys(folder: Path) -> set[str]:
    """Where the files of `folder` belong in a bucket."""
    return {f"{RESULT}/{p.name}" for p in folder.iterdir()}


def _visible(keys: set[str]) -> set[str]:
    """What a C3 reader looks at: not the attempts' own upload places."""
    return {k for k in keys if "/.attempts/" not in k}


def _listed(folder: Path) -> dict:
    """The manifest `upload_dir` commits for `folder`: its own, plus each other file's size and MD5."""
    manifest = json.loads((folder / "manifest.json").read_text())
    files = sorted(p for p in folder.iterdir() if p.name != "manifest.json")
    return {**manifest, "files": {p.name: {"size_bytes": p.stat().st_size,
                                           "md5": hashlib.md5(p.read_bytes()).hexdigest()} for p in files}}


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
    assert bucket_backend.get(f"{RESULT}/part01.bin") == _byte(1, 0) * 1000
    assert storage.is_complete(dest) == _listed(folder)
    assert storage.is_complete(dest)["files"]["part01.bin"] == {"size_bytes": 1000,
                                                                 "md5": hashlib.md5(_byte(1, 0) * 1000).hexdigest()}


def test_a_reader_never_sees_the_manifest_before_every_other_file(bucket_backend, tmp_path):
    folder = _results_dir(tmp_path, n_files=24, size=300_000)
    seen = _watch(bucket_backend, lambda: storage.upload_dir(bucket_backend.uri(), folder))
    for keys in seen:
        if MANIFEST in keys:
            assert _visible(keys) == _keys(folder)
    assert seen[-1] == _keys(folder)  # and the attempt's own upload place is gone
    assert any(keys and MANIFEST not in keys for keys in seen), "the reader never saw the upload in progress"


def test_reupload_replaces_the_old_result(bucket_backend, tmp_path):
    dest = storage.upload_dir(bucket_backend.uri(), _results_dir(tmp_path, n_files=3, name="old"))
    new = _results_dir(tmp_path, n_files=1, name="new", version="2", fill=7)
    assert storage.upload_dir(bucket_backend.uri(), new) == dest
    assert bucket_backend.keys() == {f"{RESULT}/manifest.json", f"{RESULT}/part00.bin"}  # no stale parts
    assert bucket_backend.get(f"{RESULT}/part00.bin") == _byte(0, 7) * 1000
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
    assert back.manifest == storage.is_complete(dest) == {**read_results(out).manifest, "files": {
        name: {"size_bytes": (out / name).stat().st_size, "md5": hashlib.md5((out / name).read_bytes()).hexdigest()}
        for name in ("filtered.npy", "header.json", "header.pkl", "info_df.parquet", "info_df.pkl")}}


# ---------------------------------------------------------------- commits: one result, never a mix

def _content_of(backend) -> tuple[str, set[int]]:
    """(version in the committed manifest, the fills its part files were written with)."""
    version = storage.is_complete(backend.uri(RESULT))["algorithm"]["version"]
    fills = {(backend.get(k)[0] - 32 - int(k[-6:-4])) % 200 for k in backend.keys(RESULT) if k.endswith(".bin")}
    return version, fills


@pytest.mark.slow
def test_concurrent_uploads_to_one_place_end_with_one_consistent_result(bucket_backend, tmp_path):
    # Both of one input (as a task Dask ran twice, or two campaigns over one file): same names and sizes,
    # different bytes, so only a commit that never mixes them ends with one fill throughout.
    bucket = bucket_backend.uri()
    for round_ in range(3):
        folders = [_results_dir(tmp_path, n_files=12, size=50_000, name=f"r{round_}-{v}", version=str(v), fill=fill)
                   for v, fill in ((1, 0), (2, 100))]
        start = threading.Barrier(2)

        def upload(folder: Path) -> str:
            start.wait()
            return storage.upload_dir(bucket, folder)

        with ThreadPoolExecutor(2) as pool:
            assert list(pool.map(upload, folders)) == [bucket_backend.uri(RESULT)] * 2
        version, fills = _content_of(bucket_backend)
        assert fills == {0 if version == "1" else 100}, f"round {round_}: a mix of both uploads"
        assert bucket_backend.keys() == _keys(folders[0])  # no attempt's place, no lock left


@pytest.mark.slow
@pytest.mark.services
def test_commits_that_overlap_still_end_consistent_where_the_listing_gives_md5(gcs_env, request, tmp_path,
                                                                               monkeypatch, caplog):
    # What a store that ignores the lock's precondition (as the GCS emulator does) or a lock broken
    # after its lease leaves: two commits at once. GCS lists each object's MD5, so the committers see
    # the mix and one commits again. (Local and S3 listings give sizes only: there the lock, which
    # both honour, keeps commits apart; test_a_commit_waits_for_the_lock_of_a_live_one.)
    from contextlib import nullcontext

    from _backends import make_backend

    backend = make_backend("gs", request, tmp_path)
    together = threading.Barrier(2)
    commit = storage.commit._Attempt.commit

    def overlapping(self, replace):
        together.wait()
        return commit(self, replace)

    monkeypatch.setattr(storage.commit, "_commit_lock", lambda attempt: nullcontext())
    monkeypatch.setattr(storage.commit._Attempt, "commit", overlapping)
    caplog.set_level("INFO", logger="bl_reservoir.storage")
    for round_ in range(3):
        folders = [_results_dir(tmp_path, n_files=16, size=20_000, name=f"r{round_}-{v}", version=str(v), fill=fill)
                   for v, fill in ((1, 0), (2, 100))]
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(lambda f: storage.upload_dir(backend.uri(), f), folders))
        version, fills = _content_of(backend)
        assert fills == {0 if version == "1" else 100}, f"round {round_}: a mix of both uploads"
    assert "committing again" in caplog.text, "the commits never overlapped: the test tested nothing"


def test_a_result_of_another_input_with_the_same_name_is_not_replaced(bucket_backend, tmp_path):
    dest = storage.upload_dir(bucket_backend.uri(), _results_dir(tmp_path, name="h5", source="gs://data/GBT_1_fine.h5"))
    fil = _results_dir(tmp_path, name="fil", version="2", fill=5, source="gs://data/GBT_1_fine.fil")
    with pytest.raises(UploadError) as info:
        storage.upload_dir(bucket_backend.uri(), fil)
    assert str(info.value) == (f"{dest}: holds the result of gs://data/GBT_1_fine.h5, and gs://data/GBT_1_fine.fil "
                               "has the same observation name 'GBT_1_fine': rename one of them, use another bucket, "
                               "or force the run (--force) to replace it")
    assert _content_of(bucket_backend) == ("1", {0}) and bucket_backend.keys() == _keys(fil)
    moved = _results_dir(tmp_path, name="moved", version="3", fill=9, source="/disk/copy/of/GBT_1_fine.h5")
    storage.upload_dir(bucket_backend.uri(), moved)  # the same file elsewhere: the same observation
    assert _content_of(bucket_backend) == ("3", {9})
    storage.upload_dir(bucket_backend.uri(), fil, replace=True)  # --force
    assert _content_of(bucket_backend) == ("2", {5})


class _FailingFS(_RecordingFS):
    """Fails the `fail_at`-th file upload (1-based), as a network that drops midway."""

    def __init__(self, fs, fail_at: int):
        super().__init__(fs)
        self.puts, self.fail_at = 0, fail_at

    def put_file(self, lpath, rpath, **kw):
        self.puts += 1
        if self.puts == self.fail_at:
            raise PermissionError(f"injected failure uploading {rpath}")
        return self._fs.put_file(lpath, rpath, **kw)


def test_a_failed_upload_leaves_the_old_result_complete(bucket_backend, tmp_path, monkeypatch):
    old = _results_dir(tmp_path, n_files=6, name="old")
    dest = storage.upload_dir(bucket_backend.uri(), old)
    before = {k: bucket_backend.get(k) for k in bucket_backend.keys()}
    original = storage.open_bucket
    monkeypatch.setattr(storage.commit, "open_bucket", lambda uri: (_FailingFS(original(uri)[0], 4), original(uri)[1]))
    new = _results_dir(tmp_path, n_files=6, name="new", version="2", fill=50)
    with pytest.raises(UploadError, match=rf"^{re.escape(dest)}: upload failed \(PermissionError: injected failure"):
        storage.upload_dir(bucket_backend.uri(), new)
    monkeypatch.setattr(storage.commit, "open_bucket", original)
    assert {k: bucket_backend.get(k) for k in bucket_backend.keys()} == before  # nothing of the attempt is left
    assert storage.is_complete(dest) == _listed(old)


def test_files_that_do_not_match_the_manifest_make_the_result_incomplete(bucket_backend, tmp_path):
    from bl_reservoir.errors import InvalidResults
    from bl_reservoir.results import read_results
    from bl_reservoir.web.bucket import Bucket, NotInBucket, ResultRef

    dest = storage.upload_dir(bucket_backend.uri(), _results_dir(tmp_path, name="res", fill=3))
    ref, web = ResultRef("GBT_1_fine", "pkg", "alg"), Bucket(bucket_backend.uri())
    assert web.manifest(ref)[0] == storage.is_complete(dest)
    bucket_backend.put(f"{RESULT}/part01.bin", b"\0" * 999)  # what a reader sees midway through a mixed commit
    assert storage.is_complete(dest) is None
    with pytest.raises(InvalidResults, match=r"the files do not match manifest.json \(part01.bin holds 999 bytes, "
                                             r"not the 1000 listed\): the results are incomplete"):
        read_results(dest, stamps=False)
    with pytest.raises(NotInBucket):
        Bucket(bucket_backend.uri()).manifest(ref)
    if bucket_backend.name == "gs":  # GCS lists each object's MD5: the same size with other bytes is caught too
        bucket_backend.put(f"{RESULT}/part01.bin", b"\7" * 1000)
        assert storage.is_complete(dest) is None


def test_an_attempt_left_by_a_dead_process_and_its_lock_are_cleared(bucket_backend, tmp_path):
    import calendar

    dead = "20000101T000000Z-deadbeef"
    bucket_backend.put(f"{RESULT}/.attempts/{dead}/part00.bin", b"half")
    since = calendar.timegm((2000, 1, 1, 0, 0, 0))
    bucket_backend.put(f"{RESULT}/.attempts/commit.lock", json.dumps({"attempt": dead, "since": since}).encode())
    folder = _results_dir(tmp_path)
    started = time.monotonic()
    storage.upload_dir(bucket_backend.uri(), folder)
    assert time.monotonic() - started < 30
    assert bucket_backend.keys() == _keys(folder)


def test_a_commit_waits_for_the_lock_of_a_live_one(bucket_backend, tmp_path):
    if bucket_backend.name == "gs":
        pytest.skip("the GCS emulator ignores ifGenerationMatch=0 (GCS honours it): the lock is advisory there")
    lock = f"{RESULT}/.attempts/commit.lock"
    bucket_backend.put(lock, json.dumps({"attempt": "someone", "since": time.time()}).encode())
    fs, path = storage.open_bucket(bucket_backend.uri(lock))
    released = threading.Timer(1.5, lambda: fs.rm_file(path))
    released.start()
    started = time.monotonic()
    storage.upload_dir(bucket_backend.uri(), _results_dir(tmp_path))
    assert time.monotonic() - started >= 1.4
    released.join()


def test_a_link_in_the_folder_is_refused_not_followed(bucket_backend, tmp_path):
    folder = _results_dir(tmp_path)
    (folder / "passwd.txt").symlink_to("/etc/passwd")
    with pytest.raises(UploadError, match=r"res: 'passwd.txt' is a symbolic link \(to '/etc/passwd'\): refused"):
        storage.upload_dir(bucket_backend.uri(), folder)
    assert bucket_backend.keys() == set()


def test_a_folder_without_manifest_is_refused(tmp_path):
    folder = _results_dir(tmp_path)
    (folder / "manifest.json").unlink()
    with pytest.raises(UploadError, match=r"res: no manifest.json: not a complete results folder"):
        storage.upload_dir(str(tmp_path / "bucket"), folder)
    assert not (tmp_path / "bucket").exists()


@pytest.mark.services
@pytest.mark.parametrize("kind", ["gs", "s3"])
def test_check_bucket_names_a_bucket_that_does_not_exist(kind, request):
    service = request.getfixturevalue({"gs": "gcs_env", "s3": "s3_env"}[kind])
    storage.check_bucket(f"{kind}://{service.bucket}/runs")  # there: nothing to say
    with pytest.raises(UploadError, match=rf"^{kind}://no-such-bucket-blr/runs: no such bucket 'no-such-bucket-blr'$"):
        storage.check_bucket(f"{kind}://no-such-bucket-blr/runs")


def test_check_bucket_of_a_local_folder(tmp_path):
    storage.check_bucket(tmp_path / "new")  # made at the first upload
    with pytest.raises(UploadError, match=r"missing/bucket: the bucket folder cannot be made: .*missing does not exist"):
        storage.check_bucket(tmp_path / "missing" / "bucket")
    (tmp_path / "a-file").write_text("")
    with pytest.raises(UploadError, match=r"the bucket folder cannot be made: .*a-file is not a folder"):
        storage.check_bucket(tmp_path / "a-file" / "bucket")


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
