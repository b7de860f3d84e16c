"""The `bl-reservoir` command: help, one-line errors, synth and info."""

from __future__ import annotations

import subprocess
import sys

import pytest

from bl_reservoir.cli import COMMANDS

C4 = ["synth", "info", "algorithms", "run", "submit", "status", "worker", "serve", "events",
      "sensitivity", "demo"]


def _cli(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bl_reservoir.cli", *args], capture_output=True,
                          text=True, cwd=cwd)


def test_help_lists_every_c4_command():
    out = _cli("--help")
    assert out.returncode == 0
    for name in C4:
        assert name in COMMANDS
        assert f"    {name}" in out.stdout


def test_bad_file_gives_one_line_and_no_traceback(tmp_path):
    bad = tmp_path / "bad.fil"
    bad.write_bytes(b"garbage" * 10)
    out = _cli("info", str(bad))
    assert out.returncode == 3
    assert out.stderr.strip().count("\n") == 0
    assert str(bad) in out.stderr and "Traceback" not in out.stderr


def test_synth_then_info(tmp_path):
    out = _cli("synth", "x.h5", "--coarse-channels", "2", "--coarse-channel-width", "4096", "--signals", "3",
               "--seed", "4", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "x.h5").exists()
    truth = (tmp_path / "x_truth.csv").read_text().splitlines()
    assert truth[0].startswith("freq_start,drift_rate,snr,width") and len(truth) == 4
    info = _cli("info", str(tmp_path / "x.h5"))
    assert info.returncode == 0
    assert "2 x 4096 fine channels" in info.stdout
    assert "(16, 1, 8192)" in info.stdout


def test_synth_refuses_other_extensions(tmp_path):
    out = _cli("synth", str(tmp_path / "x.txt"))
    assert out.returncode == 2 and "must end in .h5 or .fil" in out.stderr


@pytest.mark.parametrize("module", ["bl_reservoir", "bl_reservoir.cli"])
def test_import_stays_cheap(module):
    code = f"import sys, {module}; heavy = {{'numpy', 'pandas', 'dask', 'fastapi', 'h5py'}} & set(sys.modules); print(sorted(heavy))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_a_warning_about_the_input_is_one_line(tmp_path):
    import numpy as np

    from bl_reservoir.io import write_h5
    from bl_reservoir.synth import bl_header

    path = tmp_path / "odd.h5"
    write_h5(path, bl_header(5000), np.ones((2, 5000), dtype=np.float32))  # no nfpc, no known coarse width
    info = _cli("info", str(path))
    assert info.returncode == 0 and "1 x 5000 fine channels" in info.stdout
    assert info.stderr.strip().splitlines() == [
        (f"bl-reservoir: warning: {path}: nchans 5000 is no multiple of a known coarse-channel width and the header "
         "has no nfpc; treating the whole band as one coarse channel")]
