"""The C1 script: arguments, the results folder it writes, and one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from bl_reservoir import __version__
from bl_reservoir.energy_detection import preprocess_fine
from bl_reservoir.energy_detection.detect import Parameters, detect
from bl_reservoir.io import open_observation
from bl_reservoir.results import FILES, read_results
from bl_reservoir.synth import Signal

MODULE = "bl_reservoir.energy_detection.preprocess_fine"
SIGNALS = {0: [Signal(3000, 0.5, 120.0, 6.0)], 1: [Signal(9000, -1.0, 150.0, 10.0)]}


def _script(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", MODULE, *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=300)


def test_script_writes_the_folder_beside_the_input(small_obs):
    path, _ = small_obs("GBT_test_fine.h5", n_coarse=2, width=16384, signals=SIGNALS)
    done = _script(path)
    assert done.returncode == 0, done.stderr
    out = path.with_suffix("")  # C1: the input path without its extension
    assert sorted(p.name for p in out.iterdir()) == sorted(FILES)
    res = read_results(out)
    assert res.manifest["algorithm"] == {"package": "energy_detection", "name": "preprocess_fine",
                                         "version": __version__}
    assert res.manifest["parameters"]["threshold"] == 2048.0
    assert res.manifest["parameters"]["coarse_channel_width"] == 16384
    assert res.manifest["input"] == {"uri": str(path), "size_bytes": path.stat().st_size}
    assert res.manifest["wall_seconds"] > 0 and res.manifest["n_hits"] == len(res.hits) > 0
    assert set(res.hits["coarse_channel"]) == {0, 1}
    assert res.stamps.shape == (len(res.hits), 16, 256)
    assert res.header["nchans"] == 2 * 16384
    assert done.stderr == ""  # no progress bar when stderr is not a terminal


def test_script_refuses_bad_input_in_one_line(tmp_path):
    bad = tmp_path / "broken.h5"
    bad.write_bytes(b"this is not HDF5")
    done = _script(bad, tmp_path / "out")
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr
    assert str(bad) in lines[0] and "HDF5" in lines[0]
    assert not (tmp_path / "out" / "manifest.json").exists()


@pytest.mark.parametrize("args, code, words", [
    (["missing.fil"], 3, ["missing.fil", "no such file"]),
    (["{obs}", "--window", "100000"], 2, ["--window 100000", "wider than the coarse channel"]),
    (["{obs}", "--coarse-channel-width", "5000"], 3, ["5000", "does not divide"]),
    (["{obs}", "--stride", "0"], 2, ["--stride"]),
])
def test_main_errors_are_one_line(small_obs, tmp_path, capsys, args, code, words):
    path, _ = small_obs("e.h5", n_coarse=1, width=16384, noise_only=True)
    argv = [a.format(obs=path) for a in args]
    argv[0] = argv[0] if argv[0] != "missing.fil" else str(tmp_path / "missing.fil")
    assert preprocess_fine.main([*argv, str(tmp_path / "out")]) == code
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and all(word in err[0] for word in words), err


def test_best_per_band(small_obs, tmp_path):
    signals = {0: [Signal(3000, 0.5, 120.0, 6.0), Signal(12000, 0.2, 200.0, 4.0)],
               1: [Signal(9000, -1.0, 150.0, 10.0)]}
    path, _ = small_obs("b.h5", n_coarse=2, width=16384, signals=signals)
    out = tmp_path / "nested" / "res"
    assert preprocess_fine.main([str(path), str(out), "--best-per-band", "2", "--quiet"]) == 0
    res = read_results(out)
    best = np.load(out / "best_hits.npy", allow_pickle=False)
    meta = json.loads((out / "best_hits.json").read_text())
    # synthetic files sit at 1501 MHz: only the 1400-1700 band has hits, its top 2 by statistic
    top = res.hits.sort_values("statistic", ascending=False).index[:2].tolist()
    assert meta["rows"] == top and meta["band"] == ["1400-1700"] * 2 and meta["per_band"] == 2
    assert meta["bands_mhz"] == [[1000.0, 1400.0], [1400.0, 1700.0], [1700.0, None]]
    np.testing.assert_array_equal(best, res.stamps[top])
    assert best.dtype == np.float32


def test_stamps_spool_through_a_scratch_file_that_is_removed(small_obs, tmp_path):
    path, _ = small_obs("spool.h5", n_coarse=2, width=16384, signals=SIGNALS)
    out = tmp_path / "sp"
    out.mkdir()
    (out / ".stamps-killed.f32").write_bytes(b"left by a killed attempt")
    preprocess_fine.run(path, out)
    with open_observation(path) as obs:
        hits, stamps = detect(obs, Parameters())  # in memory
    res = read_results(out)
    np.testing.assert_array_equal(res.stamps, stamps)
    assert res.hits["index"].tolist() == hits["index"].tolist()
    assert sorted(p.name for p in out.iterdir()) == sorted(FILES)  # no scratch left


def test_no_hits_gives_an_empty_valid_folder(small_obs, tmp_path):
    path, _ = small_obs("quiet.fil", n_coarse=2, width=16384, noise_only=True)
    assert preprocess_fine.main([str(path), str(tmp_path / "r"), "--best-per-band", "4"]) == 0
    res = read_results(tmp_path / "r")
    assert len(res.hits) == 0 and res.stamps.shape == (0, 16, 256) and res.manifest["n_hits"] == 0
    assert np.load(tmp_path / "r" / "best_hits.npy").shape == (0, 16, 256)


def test_mid_resolution_parameters(small_obs, tmp_path):
    path, _ = small_obs("mid.h5", n_coarse=1, width=16384, signals={0: [Signal(3000, 0.0, 60.0, 8.0)]})
    assert preprocess_fine.main([str(path), str(tmp_path / "m"), "--pvalue", "1e-25", "--window", "128",
                                 "--stride", "64", "--knots", "8", "--quiet"]) == 0
    res = read_results(tmp_path / "m")
    params = res.manifest["parameters"]
    assert (params["pvalue"], params["window"], params["stride"], params["knots"]) == (1e-25, 128, 64, 8)
    assert len(res.hits) > 0 and (res.hits["pvalue"] < 1e-25).all()
    assert res.stamps.shape[1:] == (16, 128) and (res.hits["index"] % 64 == 0).all()


def test_progress_bar_per_coarse_channel(small_obs, capsys):
    path, _ = small_obs("bar.h5", n_coarse=3, width=16384, noise_only=True)
    with open_observation(path) as obs:
        detect(obs, Parameters(), progress=True)
    err = capsys.readouterr().err
    assert "0/3" in err and "coarse channel/s" in err  # one step per coarse channel


@pytest.mark.filterwarnings("default::bl_reservoir.errors.ReservoirWarning")  # the script shows it as one line
def test_missing_samples_cost_no_hit_and_make_none(small_obs, tmp_path, capsys):
    import h5py

    path, _ = small_obs("holes.h5", n_coarse=2, width=16384, signals=SIGNALS)
    assert preprocess_fine.main([str(path), str(tmp_path / "clean"), "--quiet"]) == 0
    with h5py.File(path, "r+") as f:
        f["data"][:, 0, 100:110] = np.nan  # NaN channels: one NaN used to blank the whole coarse channel
        f["data"][5, 0, 16384:] = 0.0  # a dropped integration: it used to make every window a hit
    assert preprocess_fine.main([str(path), str(tmp_path / "holes"), "--quiet"]) == 0
    warned = capsys.readouterr().err.strip().splitlines()
    assert [line.split(": ")[3] for line in warned] == ["channels 0..16384", "channels 16384..32768"]
    clean, holes = read_results(tmp_path / "clean").hits, read_results(tmp_path / "holes").hits
    assert len(clean) > 0 and set(clean["coarse_channel"]) == {0, 1}
    assert holes["index"].tolist() == clean["index"].tolist()
