"""What every C1 script shares: where its results go by default, and how it fails."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from bl_reservoir.errors import InvalidObservation, ReservoirWarning
from bl_reservoir.script import default_out_dir, run_script


@pytest.mark.parametrize("given, expected", [
    ("/data/obs.h5", "/data/obs"),
    ("file:///data/obs.fil", "/data/obs"),
    ("rel/x.y.h5", "rel/x.y"),
    ("gs://bucket/inputs/GBT_58402_fine.h5", "GBT_58402_fine"),       # in the working folder
    ("https://host/a/b.fil?sig=abc", "b"),
    ("s3://bucket/obs", "obs"),
])
def test_default_out_dir(given, expected):
    assert default_out_dir(given) == Path(expected)


@pytest.mark.parametrize("module", ["energy_detection.preprocess_fine", "dedoppler.search"])
def test_both_builtins_put_a_remote_inputs_results_in_the_working_folder(module, http_root, strong_signal_obs,
                                                                         tmp_path, monkeypatch):
    www, url = http_root
    path, _ = strong_signal_obs
    (www / "remote.h5").write_bytes(path.read_bytes())
    work = tmp_path / "work"
    work.mkdir()
    proc = subprocess.run([sys.executable, "-m", f"bl_reservoir.{module}", f"{url}/remote.h5", "--quiet"],
                          cwd=work, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "BL_RESERVOIR_CACHE": str(tmp_path / "cache")})
    assert proc.returncode == 0, proc.stderr
    assert (work / "remote" / "manifest.json").is_file()
    assert not list((tmp_path / "cache").rglob("manifest.json"))  # nothing beside the downloaded copy


def test_run_script_turns_bad_input_into_one_line(capsys):
    def work():
        raise InvalidObservation("x.h5", "truncated header")

    assert run_script("alg/name", "x.h5", work) == InvalidObservation.exit_code
    assert capsys.readouterr().err == "alg/name: error: x.h5: truncated header\n"


@pytest.mark.filterwarnings("always::bl_reservoir.errors.ReservoirWarning")  # shown, as a user sees it
def test_run_script_shows_input_warnings_in_one_line(capsys):
    def work():
        warnings.warn("x.h5: channels 0..4: 3 NaN samples replaced", ReservoirWarning, stacklevel=1)

    assert run_script("alg/name", "x.h5", work) == 0
    assert capsys.readouterr().err == "alg/name: warning: x.h5: channels 0..4: 3 NaN samples replaced\n"


def test_run_script_names_an_unwritable_output(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")

    def work():
        (blocker / "out").mkdir()

    assert run_script("alg/name", "x.h5", work) == 1
    assert capsys.readouterr().err.startswith(f"alg/name: error: {blocker / 'out'}: ")
