"""An algorithm's output is not trusted: pickles that run code, links, special files, sizes; and no
algorithm process outlives the job that started it, even when that job's process is SIGKILLed.

The hostile algorithms are in tests/_hostile.py; every job here runs them for real.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import _hostile
import pytest

from bl_reservoir import runner
from bl_reservoir.errors import JobFailed
from bl_reservoir.results import read_results

pytestmark = pytest.mark.services


@pytest.fixture
def hostile(tmp_path, monkeypatch):
    """The `hostile/*` algorithms, and a cache (scratch, inputs) private to the test."""
    monkeypatch.setenv("BL_RESERVOIR_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("BL_RESERVOIR_BUCKET", raising=False)
    return _hostile.install(tmp_path / "site", monkeypatch)


def _fails(algorithm: str, path: Path, bucket: Path, **kw) -> str:
    """The one-line reason of a job that must fail, having left nothing in the bucket or scratch."""
    with pytest.raises(JobFailed) as info:
        runner.run_job(algorithm, str(path), bucket=str(bucket), **kw)
    assert "\n" not in info.value.reason
    assert not bucket.exists() or not any(p.is_file() for p in bucket.rglob("*"))
    assert not any(runner.scratch_root().iterdir())
    return info.value.reason


def test_pickles_run_their_code_in_the_algorithm_interpreter_never_here(hostile, strong_signal_obs, tmp_path,
                                                                         monkeypatch):
    path, _ = strong_signal_obs
    marker = tmp_path / "unpickled-by"
    monkeypatch.setenv("BLR_HOSTILE_MARKER", str(marker))
    outcome = runner.run_job("hostile/bomb", str(path), bucket=str(tmp_path / "bucket"))
    assert marker.read_text() != str(os.getpid())  # the payload ran, in the algorithm's own interpreter
    hits = read_results(outcome.result_uri).hits
    assert hits["index"].tolist() == [1, 4097] and hits["coarse_channel"].tolist() == [0, 1]


def test_original_style_output_still_completes(hostile, strong_signal_obs, tmp_path):
    # only header.pkl, info_df.pkl (no freqs or coarse_channel) and float64 stamps, as the original reservoir wrote
    path, _ = strong_signal_obs
    outcome = runner.run_job("hostile/flaky", str(path), bucket=str(tmp_path / "bucket"))
    result = read_results(outcome.result_uri)
    assert list(result.hits.columns) == ["index", "snr", "freqs", "coarse_channel"]
    assert result.hits["coarse_channel"].tolist() == [0, 1] and result.stamps.dtype == "float32"
    assert result.header["nchans"] == 2 * 4096


@pytest.mark.parametrize("algorithm, reason", [
    ("hostile/symlink", r"'passwd.txt' is a symbolic link \(to '/etc/passwd'\): refused, never followed"),
    ("hostile/fifo", r"'stream' is not a plain file \(a pipe, socket or device\): refused"),
])
def test_links_and_special_files_are_refused_not_uploaded(algorithm, reason, hostile, strong_signal_obs, tmp_path):
    path, _ = strong_signal_obs
    # seen when it exits, or (killed) by the look taken every second while it runs
    assert re.fullmatch(rf"{algorithm} on .*strong\.h5: {reason}( \(killed\))?", _fails(algorithm, path, tmp_path / "b"))


def test_a_result_over_the_size_limit_fails_the_job(hostile, strong_signal_obs, tmp_path):
    path, _ = strong_signal_obs
    reason = _fails("hostile/huge", path, tmp_path / "bucket", max_result_bytes=1_000_000)
    # caught when it exits, or by the look taken every second while it runs
    assert re.fullmatch(rf"hostile/huge on {re.escape(str(path))}: the result (holds|reached) 3,0\d\d,\d\d\d bytes, "
                        r"over the limit of 1,000,000 bytes \(--max-result-size\)( \(killed\))?", reason), reason


def test_an_algorithm_writing_past_the_limit_is_killed_while_it_runs(hostile, strong_signal_obs, tmp_path):
    path, _ = strong_signal_obs
    started = time.monotonic()
    reason = _fails("hostile/huge", path, tmp_path / "bucket", max_result_bytes=20_000_000,
                    options=["--keep-writing"])  # 20 MB/s, forever
    assert reason.endswith(" bytes, over the limit of 20,000,000 bytes (--max-result-size) (killed)")
    assert "the result reached " in reason and time.monotonic() - started < 60


def test_cli_max_result_size(hostile, strong_signal_obs, tmp_path, capsys):
    from bl_reservoir.cli import main

    path, _ = strong_signal_obs
    argv = ["run", "hostile/huge", str(path), "--bucket", str(tmp_path / "b"), "--max-result-size", "1MB"]
    assert main(argv) == JobFailed.exit_code
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and " bytes, over the limit of 1,000,000 bytes (--max-result-size)" in err
    assert main([*argv[:-1], "2GiB"]) == 0  # and the same job within the limit


def _children(pid: int) -> list:
    import psutil

    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def _gone(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE  # dead, waiting for init to reap it
    except psutil.NoSuchProcess:
        return True


def test_a_sigkilled_job_process_leaves_no_algorithm_behind(hostile, strong_signal_obs, tmp_path):
    path, _ = strong_signal_obs
    bucket = str(tmp_path / "bucket")
    old = runner.run_job("hostile/flaky", str(path), bucket=bucket)
    job = subprocess.Popen([sys.executable, "-c", "import sys; from bl_reservoir import runner; "
                            "runner.run_job('hostile/flaky', sys.argv[1], bucket=sys.argv[2], force=True, "
                            "options=['--sleep', '600'])", str(path), bucket])
    algorithm = None
    try:
        deadline = time.monotonic() + 60
        while algorithm is None and time.monotonic() < deadline:
            found = [p for p in _children(job.pid) if "blr_hostile.flaky" in " ".join(p.cmdline())]
            algorithm = found[0].pid if found else None
            time.sleep(0.1)
        assert algorithm is not None, "the algorithm never started"
        os.kill(job.pid, signal.SIGKILL)
        job.wait(10)
        deadline = time.monotonic() + 5
        while not _gone(algorithm) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _gone(algorithm), "the algorithm outlived the process that ran its job"
    finally:
        job.kill()
        if algorithm is not None and not _gone(algorithm):
            os.kill(algorithm, signal.SIGKILL)
    assert read_results(old.result_uri).manifest == old.manifest  # the killed re-run left the old result
