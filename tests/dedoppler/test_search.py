"""The C1 script: results folder, turboSETI .dat, and one-line errors for bad input."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from bl_reservoir.dedoppler.datfile import TABLE_COLUMNS, read_dat
from bl_reservoir.dedoppler.search import main
from bl_reservoir.results import read_results
from bl_reservoir.synth import Signal, make_observation

SIGNALS = {0: [Signal(1200, 1.5, 40.0, 4.0), Signal(3000, -0.5, 30.0, 4.0)], 1: [Signal(2500, 0.25, 35.0, 4.0)]}


def _script(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "bl_reservoir.dedoppler.search", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd, check=False)


@pytest.fixture(scope="module")
def searched(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("search")
    path, truth = make_observation(tmp_path / "target.h5", n_coarse_channels=2, coarse_channel_width=4096,
                                   signals=SIGNALS, seed=1)
    proc = _script(path, "--quiet")
    assert proc.returncode == 0, proc.stderr
    return path, truth, tmp_path / "target"  # out_dir defaults to the input without extension


def test_results_folder_follows_c2(searched):
    _, truth, out = searched
    res = read_results(out)
    assert res.manifest["algorithm"]["package"] == "dedoppler" and res.manifest["algorithm"]["name"] == "search"
    assert res.manifest["parameters"]["max_drift"] == 4.0 and res.manifest["n_hits"] == 3
    for column in ("index", "freqs", "coarse_channel", "drift_rate", "snr", "freq_start", "freq_end"):
        assert column in res.hits.columns
    assert sorted(res.hits["index"]) == pytest.approx(sorted(truth["index"]), abs=4)
    assert res.stamps.shape == (3, 16, 801) and res.stamps.dtype == np.float32
    # stamps are centred on the hit: the signal's first sample sits in the middle column
    for stamp in res.stamps:
        assert abs(int(np.argmax(stamp[0])) - 400) <= 4
    assert res.header["nchans"] == 8192


def test_dat_file_has_turboseti_layout(searched):
    _, _, out = searched
    dat = out / "target.dat"
    lines = dat.read_text().splitlines()
    assert lines[1] == "# File ID: target.h5 "
    assert lines[3] == "# Source:SYNTHETIC"
    assert lines[4].startswith("# MJD: 60000.000000000000\tRA: 17h45m40.0392s\tDEC: -29d00m28.0692s")
    assert lines[5] == ("# DELTAT:  18.253611\tDELTAF(Hz):  -2.793968\tmax_drift_rate:   4.000000\t"
                        "obs_length: 292.057776")
    assert lines[7].split(" \t")[:3] == ["# Top_Hit_#", "Drift_Rate", "SNR"]
    fields = lines[9].split("\t")
    assert len(fields) == 13 and fields[-1] == ""  # 12 fields, each followed by a tab
    assert fields[0] == "000001" and len(fields[1]) == 10 and len(fields[3]) == 14 and fields[8] == "0.0"
    table = read_dat(dat)
    assert list(table.columns) == TABLE_COLUMNS and len(table) == 3
    res = read_results(out)
    np.testing.assert_allclose(table["DriftRate"], res.hits["drift_rate"], atol=1e-6)
    np.testing.assert_allclose(table["Freq"], res.hits["freqs"], atol=1e-6)
    assert table["ChanIndx"].tolist() == (res.hits["index"] % 4096).tolist()
    assert table["CoarseChanNum"].tolist() == res.hits["coarse_channel"].tolist()


@pytest.mark.slow
def test_turboseti_read_dat_reads_our_dat(searched, turboseti_python):
    _, _, out = searched
    code = ("import sys; from turbo_seti.find_event.find_event import read_dat; "
            "df = read_dat(sys.argv[1]); "
            "print(len(df), df['DriftRate'].round(6).tolist(), df['ChanIndx'].tolist(), df['FileID'].iloc[0], "
            "df['max_drift_rate'].iloc[0])")
    proc = subprocess.run([str(turboseti_python), "-c", code, str(out / "target.dat")], capture_output=True, text=True,
                          check=False)
    assert proc.returncode == 0, proc.stderr
    ours = read_dat(out / "target.dat")
    assert proc.stdout.split()[0] == "3"
    assert str(ours["DriftRate"].round(6).tolist()) in proc.stdout
    assert "target.h5 4.000000" in proc.stdout


def test_bad_input_is_one_line_naming_the_file(tmp_path, capsys):
    bad = tmp_path / "broken.h5"
    bad.write_bytes(b"not hdf5 at all")
    proc = _script(bad)  # the real process: exit code, one line, no traceback
    assert proc.returncode == 3
    expected = f"dedoppler/search: error: {bad}: not a readable HDF5 file (Unable to synchronously open file)"
    assert proc.stderr.strip().splitlines() == [expected]
    for args in ([tmp_path / "missing.fil"], [bad, "--max-drift", "-1"], [bad, "--gpu"], [bad, "--min-drift", "9"]):
        assert main([str(a) for a in args]) != 0
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and str(args[0]) in lines[0]


def test_out_dir_argument_is_used(small_obs, tmp_path):
    path, _ = small_obs("x.h5", n_coarse=1, width=4096, noise_only=True)
    assert main([str(path), str(tmp_path / "elsewhere"), "--snr", "25", "--quiet"]) == 0
    res = read_results(tmp_path / "elsewhere")
    assert len(res.hits) == 0 and res.stamps.shape[0] == 0
    assert len((tmp_path / "elsewhere" / "x.dat").read_text().splitlines()) == 9


def test_the_script_skips_numbas_blas_probe_and_leaves_scipy_linalg_importable(searched, tmp_path):
    path, _, _ = searched
    # on the JIT fallback (no ahead-of-time module), where numba's first dispatch runs the probe
    code = f"""
import sys
import numpy as np
from numba import njit
from bl_reservoir.dedoppler import _aot
from bl_reservoir.dedoppler.search import main
_aot._load = lambda: None
assert main([{str(path)!r}, {str(tmp_path / 'out')!r}, "--quiet"]) == 0
import numba.np.arraymath, scipy.linalg
dot = njit(lambda a, b: np.dot(a, b))
print(numba.np.arraymath._HAVE_BLAS, scipy.linalg.norm([3.0, 4.0]), dot(np.ones((2, 2)), np.ones(2)).tolist())
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    # numba was told "no BLAS" during the search; afterwards scipy.linalg and numba's np.dot both work
    assert proc.stdout.split() == ["False", "5.0", "[2.0,", "2.0]"]
    assert (tmp_path / "out" / "manifest.json").exists()


def test_nan_and_inf_samples_cost_no_hit_and_say_where_they_were(searched, tmp_path):
    import h5py

    _, _, clean_out = searched
    path, _ = make_observation(tmp_path / "holes.h5", n_coarse_channels=2, coarse_channel_width=4096,
                               signals=SIGNALS, seed=1)  # the same data as `searched`
    with h5py.File(path, "r+") as f:
        f["data"][:, 0, 500:510] = np.nan  # a band of dropped channels in coarse channel 0
        f["data"][3, 0, 2000] = np.inf
        f["data"][7, 0, 4096:] = np.nan  # one whole spectrum of coarse channel 1
    proc = _script(path, "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.strip().splitlines() == [
        (f"dedoppler/search: warning: {path}: channels 0..4096: 161 NaN or infinite samples in 11 channels "
         "replaced by their channel's median over time"),
        (f"dedoppler/search: warning: {path}: channels 4096..8192: 4096 NaN or infinite samples in 4096 channels "
         "replaced by their channel's median over time")]
    clean, holes = read_results(clean_out).hits, read_results(tmp_path / "holes").hits
    assert holes["index"].tolist() == clean["index"].tolist()
    np.testing.assert_allclose(holes["drift_rate"], clean["drift_rate"])
    np.testing.assert_allclose(holes["snr"], clean["snr"], rtol=0.1)


def test_dat_windows_are_clipped_to_the_coarse_channel_as_turbosetis(tmp_path):
    # turboSETI's freq_start/freq_end: +-2 x ceil(max_drift / resolution) = 784 channels around the hit, clipped
    # to its coarse channel (its `lbound = max(0, i - distance)`, `ubound = min(fftlen, i + distance)`)
    signals = {0: [Signal(100, 0.5, 40.0, 4.0)], 1: [Signal(4000, -0.5, 40.0, 4.0)]}
    path, _ = make_observation(tmp_path / "edges.h5", n_coarse_channels=2, coarse_channel_width=4096,
                               signals=signals, seed=2)
    assert main([str(path), str(tmp_path / "out"), "--quiet"]) == 0
    table = read_dat(tmp_path / "out" / "edges.dat")
    header = read_results(tmp_path / "out").header
    freq = lambda channel: header["fch1"] + header["foff"] * channel  # noqa: E731
    assert table["ChanIndx"].tolist() == [100, 4000]
    np.testing.assert_allclose(table["FreqStart"], [freq(0), freq(4096 + 4000 - 784)], atol=1e-6)
    np.testing.assert_allclose(table["FreqEnd"], [freq(100 + 783), freq(2 * 4096 - 1)], atol=1e-6)
