"""Jobs end to end: fetch, run, complete, upload, clean up; and every way a job can fail."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import _algorithms
import _hostile
import pytest

from bl_reservoir import runner
from bl_reservoir.cli import docker_cmd
from bl_reservoir.errors import JobCancelled, JobFailed
from bl_reservoir.io import fetch
from bl_reservoir.results import read_results

pytestmark = pytest.mark.services

RESULT_FILES = ["filtered.npy", "header.json", "header.pkl", "info_df.parquet", "info_df.pkl", "log.txt",
                "manifest.json"]


@pytest.fixture
def algos(tmp_path, monkeypatch):
    """The `testalgs/*` entry-point algorithms, and a cache (scratch, inputs) private to the test."""
    monkeypatch.setenv("BL_RESERVOIR_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("BL_RESERVOIR_BUCKET", raising=False)
    return _algorithms.install(tmp_path / "site", monkeypatch)


def _tree(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")) if folder.exists() else []


def _scratch() -> list[str]:
    return _tree(runner.scratch_root())


class Recorder(list):
    def __call__(self, event):
        json.dumps(event)  # events must be JSON-able as they are
        self.append(event)

    @property
    def names(self):
        return [e["event"] for e in self]


# ---------------------------------------------------------------- successful jobs

@pytest.mark.slow
def test_builtin_job_into_local_bucket(algos, strong_signal_obs, tmp_path):
    path, _ = strong_signal_obs
    bucket = tmp_path / "bucket"
    events = Recorder()
    outcome = runner.run_job("energy_detection/preprocess_fine", str(path), bucket=str(bucket),
                             options=["--threshold", "500"], on_event=events, job_id="job-1")
    assert events.names == ["received", "fetched", "running", "uploaded", "done"]
    assert {e["job"] for e in events} == {"job-1"}
    assert all(e["time"].endswith("Z") and e["input"] == str(path) for e in events)
    place = bucket / "strong" / "energy_detection" / "preprocess_fine"
    assert outcome.state == "succeeded" and outcome.result_uri == str(place)
    assert _tree(place) == RESULT_FILES
    result = read_results(place)
    manifest = result.manifest
    assert manifest["algorithm"] == {"package": "energy_detection", "name": "preprocess_fine", "version": "0.1.0"}
    assert manifest["input"] == {"uri": str(path), "size_bytes": path.stat().st_size}
    assert manifest["parameters"]["threshold"] == 500.0  # the algorithm's own full parameter set
    assert manifest["options"] == ["--threshold", "500"]
    assert manifest["wall_seconds"] > 0 and manifest["started_at"] <= manifest["finished_at"]
    assert outcome.n_hits == manifest["n_hits"] == len(result.hits)
    assert _scratch() == []


@pytest.mark.slow
def test_job_to_gcs_bucket_checked_with_the_gcs_client(algos, gcs_env, strong_signal_obs):
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage as gcs

    path, truth = strong_signal_obs
    outcome = runner.run_job("testalgs/ok", str(path), bucket=f"gs://{gcs_env.bucket}/runs",
                             options=["--flag", "--level", "3"])
    assert outcome.result_uri == f"gs://{gcs_env.bucket}/runs/strong/testalgs/ok"
    bucket = gcs.Client(project="test", credentials=AnonymousCredentials()).bucket(gcs_env.bucket)
    names = sorted(b.name for b in bucket.list_blobs(prefix="runs/strong/"))
    assert names == [f"runs/strong/testalgs/ok/{n}" for n in RESULT_FILES]
    manifest = json.loads(bucket.blob("runs/strong/testalgs/ok/manifest.json").download_as_bytes())
    assert manifest["algorithm"] == {"package": "testalgs", "name": "ok", "version": "1.2.3"}
    assert manifest["parameters"] == {"flag": True, "level": "3"}
    assert manifest["input"]["size_bytes"] == path.stat().st_size and manifest["n_hits"] == 2
    log = bucket.blob("runs/strong/testalgs/ok/log.txt").download_as_bytes().decode()
    assert "ok called with" in log and "--flag --level 3" in log
    hits = read_results(outcome.result_uri).hits
    assert list(hits["coarse_channel"]) == [0, 1]
    assert abs(int(hits["index"][0]) - int(truth["index"][0])) < 60  # the injected signal, drifting
    assert _scratch() == []


@pytest.mark.slow
def test_job_from_s3_to_s3_checked_with_boto3(algos, s3_env, strong_signal_obs):
    import boto3

    path, _ = strong_signal_obs
    client = boto3.client("s3")
    client.upload_file(str(path), s3_env.bucket, "inputs/strong.h5")
    events = Recorder()
    outcome = runner.run_job("testalgs/ok", f"s3://{s3_env.bucket}/inputs/strong.h5",
                             bucket=f"s3://{s3_env.bucket}", on_event=events)
    keys = sorted(o["Key"] for o in client.list_objects_v2(Bucket=s3_env.bucket, Prefix="strong/")["Contents"])
    assert keys == [f"strong/testalgs/ok/{n}" for n in RESULT_FILES]
    manifest = json.loads(client.get_object(Bucket=s3_env.bucket, Key="strong/testalgs/ok/manifest.json")["Body"].read())
    assert manifest["input"] == {"uri": f"s3://{s3_env.bucket}/inputs/strong.h5", "size_bytes": path.stat().st_size}
    assert events[1]["size_bytes"] == path.stat().st_size
    assert outcome.n_hits == 2 and _scratch() == []


def test_job_from_http_input(algos, http_root, strong_signal_obs, tmp_path):
    root, url = http_root
    path, _ = strong_signal_obs
    (root / "strong.h5").write_bytes(path.read_bytes())
    outcome = runner.run_job("testalgs/ok", f"{url}/strong.h5", bucket=str(tmp_path / "b"))
    assert _tree(Path(outcome.result_uri)) == RESULT_FILES
    assert read_results(outcome.result_uri).manifest["input"]["uri"] == f"{url}/strong.h5"
    assert _scratch() == []


@pytest.mark.slow
def test_complete_result_is_skipped_unless_forced(algos, strong_signal_obs, tmp_path):
    path, _ = strong_signal_obs
    bucket = str(tmp_path / "bucket")
    first = runner.run_job("testalgs/ok", str(path), bucket=bucket)
    events = Recorder()
    again = runner.run_job("testalgs/ok", str(path), bucket=bucket, on_event=events)
    assert again.state == "skipped" and events.names == ["received", "skipped"]
    assert again.manifest["finished_at"] == first.manifest["finished_at"]
    forced = runner.run_job("testalgs/ok", str(path), bucket=bucket, force=True)
    assert forced.state == "succeeded" and forced.manifest["finished_at"] > first.manifest["finished_at"]
    other_options = runner.run_job("testalgs/ok", str(path), bucket=bucket, options=["--x", "1"])
    assert other_options.state == "succeeded"
    (Path(first.result_uri) / "stale.bin").write_bytes(b"old")
    path.write_bytes(path.read_bytes() + b"\0" * 8)  # same name, new size: a new input
    rerun = runner.run_job("testalgs/ok", str(path), bucket=bucket, options=["--x", "1"])
    assert rerun.state == "succeeded" and "stale.bin" not in _tree(Path(rerun.result_uri))


def test_function_entry_point_with_no_hits(algos, strong_signal_obs, tmp_path):
    path, _ = strong_signal_obs
    outcome = runner.run_job("testalgs/func", str(path), bucket=str(tmp_path / "b"), options=["--k", "v"])
    result = read_results(outcome.result_uri)
    assert outcome.n_hits == 0 and len(result.hits) == 0 and result.stamps.shape == (0, 16, 32)
    assert "--k', 'v']" in (Path(outcome.result_uri) / "log.txt").read_text()


def test_incomplete_result_is_rerun(algos, strong_signal_obs, tmp_path):
    """A result without manifest (a worker killed mid-upload) is not trusted: the job runs again."""
    path, _ = strong_signal_obs
    place = tmp_path / "bucket" / "strong" / "testalgs" / "ok"
    place.mkdir(parents=True)
    (place / "filtered.npy").write_bytes(b"half")
    outcome = runner.run_job("testalgs/ok", str(path), bucket=str(tmp_path / "bucket"))
    assert outcome.state == "succeeded" and _tree(place) == RESULT_FILES


def test_stale_scratch_of_a_dead_job_is_removed(algos, strong_signal_obs, tmp_path):
    path, _ = strong_signal_obs
    stale = runner.scratch_root() / "job-dead-abc"
    (stale / "out").mkdir(parents=True)
    (stale / ".lock").write_text("")
    old = time.time() - 600
    os.utime(stale, (old, old))  # its process died ten minutes ago
    starting = runner.scratch_root() / "job-starting-xyz"  # made a moment ago, lock not yet taken
    starting.mkdir()
    locking = runner.scratch_root() / "job-locking-xyz"  # lock file created, flock a moment away
    locking.mkdir()
    (locking / ".lock").write_text("")
    runner.run_job("testalgs/ok", str(path), bucket=str(tmp_path / "bucket"))
    assert _scratch() == ["job-locking-xyz", "job-locking-xyz/.lock", "job-starting-xyz"]


def test_a_job_gets_one_core_unless_the_caller_says_otherwise(algos, strong_signal_obs, tmp_path, monkeypatch):
    path, _ = strong_signal_obs
    monkeypatch.delenv("NUMBA_NUM_THREADS", raising=False)
    one = runner.run_job("testalgs/ok", str(path), bucket=str(tmp_path / "one"))
    assert "NUMBA_NUM_THREADS=1" in (Path(one.result_uri) / "log.txt").read_text().splitlines()
    monkeypatch.setenv("NUMBA_NUM_THREADS", "2")
    two = runner.run_job("testalgs/ok", str(path), bucket=str(tmp_path / "two"))
    assert "NUMBA_NUM_THREADS=2" in (Path(two.result_uri) / "log.txt").read_text().splitlines()


def test_jobs_run_side_by_side_in_one_process(algos, strong_signal_obs, tmp_path):
    # a sweep by one job once removed the scratch folder of another that had made its lock file
    # but not yet locked it (seen running run_job from two threads)
    path, _ = strong_signal_obs
    with ThreadPoolExecutor(4) as pool:
        outcomes = list(pool.map(lambda n: runner.run_job("testalgs/ok", str(path), bucket=str(tmp_path / f"b{n}")),
                                 range(16)))
    assert [o.state for o in outcomes] == ["succeeded"] * 16
    assert _scratch() == []


# ---------------------------------------------------------------- failures

@pytest.fixture
def bucket(tmp_path):
    """A local bucket holding one unrelated result, to show that failures leave it unchanged."""
    folder = tmp_path / "bucket"
    (folder / "other" / "x" / "y").mkdir(parents=True)
    (folder / "other" / "x" / "y" / "manifest.json").write_text("{}")
    return folder


def _fails(algorithm, input_uri, bucket, match, **kw):
    before = _tree(bucket)
    events = Recorder()
    with pytest.raises(JobFailed, match=match) as info:
        runner.run_job(algorithm, input_uri, bucket=str(bucket), on_event=events, **kw)
    assert events.names[0] == "received" and events.names[-1] == "failed"
    assert events[-1]["reason"] == info.value.reason and "\n" not in info.value.reason
    assert _tree(bucket) == before
    assert _scratch() == []
    return info.value


def test_fails_unknown_algorithm(algos, strong_signal_obs, bucket):
    path, _ = strong_signal_obs
    error = _fails("nope/search", str(path), bucket, r"unknown algorithm 'nope/search' \(known: .*testalgs/ok")
    assert "energy_detection/preprocess_fine" in error.reason


def test_fails_missing_input(algos, bucket, tmp_path):
    _fails("testalgs/ok", str(tmp_path / "absent.h5"), bucket, r"absent\.h5: no such file")


def test_fails_http_404(algos, bucket, http_root):
    _, url = http_root
    _fails("testalgs/ok", f"{url}/absent.h5", bucket, r"/absent\.h5: not found \(404\)")


def test_fails_refused_scheme(algos, bucket):
    _fails("testalgs/ok", "ftp://example.org/obs.h5", bucket, r"ftp://example.org/obs.h5: scheme ftp:// is not supported")


def test_fails_corrupt_observation(algos, bucket, tmp_path):
    bad = tmp_path / "bad.h5"
    bad.write_bytes(b"not an observation" * 50)
    _fails("testalgs/ok", str(bad), bucket, r"bad\.h5: not a readable HDF5 file")


def test_fails_nonzero_exit_with_log_tail(algos, strong_signal_obs, bucket):
    path, _ = strong_signal_obs
    error = _fails("testalgs/crash", str(path), bucket, r"testalgs/crash on .*strong\.h5: exited with code 3")
    assert error.reason.endswith("last log lines: loading the observation | searching coarse channel 0 | "
                                 "ValueError: the sky fell in coarse channel 1")


def test_a_failed_jobs_whole_log_is_kept_in_its_failed_event(algos, strong_signal_obs, bucket):
    """The scratch folder goes and nothing reaches the bucket, but the `failed` event (which the job store
    keeps) carries the log, not only its last lines."""
    path, _ = strong_signal_obs
    events = Recorder()
    with pytest.raises(JobFailed):
        runner.run_job("testalgs/crash", str(path), bucket=str(bucket), on_event=events)
    assert events[-1]["event"] == "failed"
    assert events[-1]["log"].splitlines() == ["loading the observation", "searching coarse channel 0",
                                              "ValueError: the sky fell in coarse channel 1"]
    with pytest.raises(JobFailed):   # a job that never ran its algorithm has no log
        runner.run_job("testalgs/crash", str(bucket / "missing.h5"), bucket=str(bucket), on_event=events)
    assert events[-1]["log"] is None


def test_fails_timeout(algos, strong_signal_obs, bucket):
    path, _ = strong_signal_obs
    _fails("testalgs/sleepy", str(path), bucket, r"testalgs/sleepy on .*: timed out after 1 s \(killed\)", timeout=1)


def test_a_cancelled_job_is_killed_and_uploads_nothing(algos, strong_signal_obs, bucket):
    path, _ = strong_signal_obs
    asked = time.monotonic() + 1.5
    start = time.monotonic()
    exc = _fails("testalgs/sleepy", str(path), bucket, r"testalgs/sleepy on .*: cancelled while running \(killed\)",
                 should_stop=lambda: time.monotonic() > asked)
    assert isinstance(exc, JobCancelled)
    assert time.monotonic() - start < 1.5 + 2 * runner.STOP_POLL_S + 5  # not the algorithm's ten minutes


def test_fails_stamps_do_not_match_hits(algos, strong_signal_obs, bucket):
    path, _ = strong_signal_obs
    _fails("testalgs/mismatch", str(path), bucket,
           r"malformed results: filtered.npy holds 1 stamps but info_df has 2 hits$")


def test_fails_missing_results_files(algos, strong_signal_obs, bucket):
    path, _ = strong_signal_obs
    _fails("testalgs/missing", str(path), bucket, r"testalgs/missing on .*strong\.h5: malformed results: missing info_df\.pkl$")


def test_fails_unreachable_bucket(algos, strong_signal_obs, monkeypatch):
    path, _ = strong_signal_obs
    monkeypatch.setattr(fetch, "RETRY_DELAYS", (0.01,))
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    events = Recorder()
    with pytest.raises(JobFailed, match=r"^s3://nowhere: cannot reach the bucket \("):
        runner.run_job("testalgs/ok", str(path), bucket="s3://nowhere", on_event=events)
    assert events.names == ["received", "failed"]
    assert _scratch() == []


# ---------------------------------------------------------------- the bucket: checked first, results kept

@pytest.fixture
def hostile(algos, monkeypatch):
    """The `hostile/*` algorithms (tests/_hostile.py) beside `testalgs/*`."""
    return _hostile.install(algos, monkeypatch)


@pytest.mark.parametrize("kind", ["gs", "s3", "local"])
def test_a_bucket_that_does_not_exist_fails_the_job_before_any_work(kind, algos, strong_signal_obs, request, tmp_path):
    path, _ = strong_signal_obs
    if kind == "local":
        bucket = str(tmp_path / "typo" / "bl-scale")
        reason = f"the bucket folder cannot be made: {tmp_path / 'typo'} does not exist"
    else:
        request.getfixturevalue({"gs": "gcs_env", "s3": "s3_env"}[kind])
        bucket, reason = f"{kind}://no-such-bucket-blr", "no such bucket 'no-such-bucket-blr'"
    events = Recorder()
    with pytest.raises(JobFailed) as info:
        runner.run_job("testalgs/ok", str(path), bucket=bucket, on_event=events)
    assert info.value.reason == f"{bucket}: {reason}"
    assert events.names == ["received", "failed"] and _scratch() == []
    assert not (tmp_path / "typo").exists()


@pytest.mark.slow
def test_x_fil_after_x_h5_fails_naming_both_unless_forced(algos, small_obs, tmp_path):
    h5, _ = small_obs("obs.h5")
    fil, _ = small_obs("obs.fil")
    bucket = tmp_path / "bucket"
    first = runner.run_job("testalgs/ok", str(h5), bucket=str(bucket))
    before = {p: p.read_bytes() for p in Path(first.result_uri).iterdir()}
    events = Recorder()
    with pytest.raises(JobFailed) as info:
        runner.run_job("testalgs/ok", str(fil), bucket=str(bucket), on_event=events)
    assert info.value.reason == (f"{first.result_uri}: holds the result of {h5}, and {fil} has the same observation "
                                 "name 'obs': rename one of them, use another bucket, or force the run (--force) "
                                 "to replace it")
    assert events.names == ["received", "failed"]  # refused before the work
    assert {p: p.read_bytes() for p in Path(first.result_uri).iterdir()} == before
    forced = runner.run_job("testalgs/ok", str(fil), bucket=str(bucket), force=True)
    assert read_results(forced.result_uri).manifest["input"]["uri"] == str(fil)


def test_a_forced_rerun_whose_algorithm_fails_keeps_the_old_result(hostile, strong_signal_obs, tmp_path):
    path, _ = strong_signal_obs
    bucket = str(tmp_path / "bucket")
    old = runner.run_job("hostile/flaky", str(path), bucket=bucket)
    with pytest.raises(JobFailed, match=r"hostile/flaky on .*: exited with code 2; last log lines: .*failing on purpose"):
        runner.run_job("hostile/flaky", str(path), bucket=bucket, force=True, options=["--fail"])
    kept = read_results(old.result_uri)
    assert kept.manifest == old.manifest and len(kept.hits) == old.n_hits == 2


def test_a_forced_rerun_whose_upload_fails_midway_keeps_the_old_result(hostile, strong_signal_obs, tmp_path,
                                                                       monkeypatch):
    from bl_reservoir import storage

    path, _ = strong_signal_obs
    bucket = tmp_path / "bucket"
    old = runner.run_job("hostile/flaky", str(path), bucket=str(bucket))
    before = _tree(bucket)
    put_file, calls = storage.open_bucket(str(bucket))[0].__class__.put_file, []

    def failing_put(fs, lpath, rpath, **kw):
        calls.append(rpath)
        if len(calls) == 3:
            raise PermissionError("injected: the network went away")
        return put_file(fs, lpath, rpath, **kw)

    monkeypatch.setattr(storage.open_bucket(str(bucket))[0].__class__, "put_file", failing_put)
    with pytest.raises(JobFailed, match=r"strong/hostile/flaky: upload failed \(PermissionError: injected"):
        runner.run_job("hostile/flaky", str(path), bucket=str(bucket), force=True)
    assert len(calls) >= 3 and _tree(bucket) == before and _scratch() == []
    assert read_results(old.result_uri).manifest == old.manifest


# ---------------------------------------------------------------- the original Docker CMD and the CLI

@pytest.mark.slow
@pytest.mark.parametrize("module, place", [("energy_detection.energy_detection", "energy_detection/preprocess_fine"),
                                           ("dedoppler.dedoppler", "dedoppler/search")])
def test_original_docker_cmd_runs_the_job(module, place, strong_signal_obs, tmp_path):
    path, _ = strong_signal_obs
    env = {"PATH": "/usr/bin:/bin", "BL_RESERVOIR_BUCKET": str(tmp_path / "bl-scale"),
           "BL_RESERVOIR_CACHE": str(tmp_path / "cache")}
    proc = subprocess.run([sys.executable, "-m", f"bl_reservoir.{module}", str(path)],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    folder = tmp_path / "bl-scale" / "strong" / place
    assert set(RESULT_FILES) <= set(_tree(folder))
    assert read_results(folder).manifest["algorithm"]["name"] == place.split("/")[1]
    assert f"result: {folder}" in proc.stdout


def test_original_docker_cmd_without_input_needs_the_worker(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "bl_reservoir.scale.worker", None)  # as if scale were absent
    assert docker_cmd.module_main("energy_detection/preprocess_fine", []) == 2
    assert "worker mode for energy_detection/preprocess_fine needs bl_reservoir.scale.worker" in capsys.readouterr().err


def test_original_docker_cmd_help(capsys):
    assert docker_cmd.module_main("dedoppler/search", ["--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: python -m bl_reservoir.dedoppler.dedoppler [INPUT")
    assert "joins the Dask cluster at DASK_SCHEDULER_ADDRESS as a worker for dedoppler/search" in out


def test_cli_run_shows_progress_and_passes_options(algos, strong_signal_obs, tmp_path, capsys):
    from bl_reservoir.cli import main

    path, _ = strong_signal_obs
    code = main(["run", "testalgs/ok", str(path), "--bucket", str(tmp_path / "b"), "--", "--level", "2"])
    out = capsys.readouterr().out
    assert code == 0
    for name in ("received", "fetched", "running", "uploaded", "done"):
        assert f" {name} " in out
    assert f"result: {tmp_path / 'b' / 'strong' / 'testalgs' / 'ok'}" in out
    manifest = read_results(tmp_path / "b" / "strong" / "testalgs" / "ok").manifest
    assert manifest["options"] == ["--level", "2"]


def test_cli_run_failure_is_one_line(algos, strong_signal_obs, tmp_path, capsys):
    from bl_reservoir.cli import main

    path, _ = strong_signal_obs
    code = main(["run", "testalgs/crash", str(path), "--bucket", str(tmp_path / "b"), "--json"])
    captured = capsys.readouterr()
    assert code == JobFailed.exit_code
    assert captured.err.count("\n") == 1 and captured.err.startswith("bl-reservoir: error: testalgs/crash on ")
    events = [json.loads(line) for line in captured.out.splitlines()]
    assert [e["event"] for e in events] == ["received", "fetched", "running", "failed"]


def test_cli_failure_display_keeps_stderr_to_one_line(algos, strong_signal_obs, tmp_path, capsys):
    from bl_reservoir.cli import main

    path, _ = strong_signal_obs
    assert main(["run", "nope/x", str(path), "--bucket", str(tmp_path / "b")]) == JobFailed.exit_code
    captured = capsys.readouterr()
    assert captured.err.splitlines() == [f"bl-reservoir: error: {captured.out.splitlines()[-1].split('failed   ')[1]}"]
    assert "unknown algorithm 'nope/x'" in captured.err


@pytest.mark.parametrize("name", ["a b <c>.h5", f"{'x' * 230}.h5", "-minus.h5", "cadences.h5"])
def test_an_observation_name_the_bucket_and_web_cannot_carry_is_refused(algos, strong_signal_obs, bucket, name):
    """One naming rule (`io.fetch.safe_name`) for the runner, the bucket and the web: a name the web could
    list but never link (spaces, `<`, 230 characters) or a reserved folder fails before any work."""
    path, _ = strong_signal_obs
    renamed = path.with_name(name)
    renamed.write_bytes(path.read_bytes())
    error = _fails("testalgs/ok", str(renamed), bucket, r"cannot name a result folder")
    assert error.reason.startswith(f"{renamed}: its observation name ") and "rename the file" in error.reason
