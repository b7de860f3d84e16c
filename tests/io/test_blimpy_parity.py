"""bl_reservoir.io against blimpy on files that blimpy and setigen wrote (blimpy is test-only)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from bl_reservoir.io import open_observation

WIDTH = 1024
N_COARSE = 3


@pytest.fixture(scope="module")
def blimpy():
    """blimpy, imported when a test needs it: it pulls in astropy, dask and matplotlib (seconds)."""
    return pytest.importorskip("blimpy")


@pytest.fixture(scope="module")
def blimpy_files(blimpy, tmp_path_factory):
    """A setigen frame saved by blimpy as .fil (32 and 8 bit) and .h5, with one drifting signal."""
    stg = pytest.importorskip("setigen")
    u = pytest.importorskip("astropy.units")
    tmp = tmp_path_factory.mktemp("blimpy")
    frame = stg.Frame(fchans=WIDTH * N_COARSE, tchans=16, df=2.7939677238464355 * u.Hz,
                      dt=18.253611008 * u.s, fch1=1500 * u.MHz, seed=3)
    frame.add_noise(x_mean=40, noise_type="chi2")
    frame.add_constant_signal(f_start=frame.get_frequency(700), drift_rate=0.2 * u.Hz / u.s,
                              level=frame.get_intensity(snr=50), width=4 * u.Hz, f_profile_type="gaussian")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        frame.save_fil(tmp / "f32.fil")
        frame.save_h5(tmp / "f32.h5")
        wf = blimpy.Waterfall(str(tmp / "f32.fil"))
        wf.header["nbits"] = wf.file_header["nbits"] = 8
        wf.data = np.clip(np.round(wf.data), 0, 127)
        wf.write_to_fil(str(tmp / "u8.fil"))
    return {name: tmp / name for name in ("f32.fil", "f32.h5", "u8.fil")}


@pytest.mark.parametrize("name", ["f32.fil", "f32.h5", "u8.fil"])
def test_same_header_and_data_coarse_channel_by_coarse_channel(blimpy, blimpy_files, name):
    path = blimpy_files[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = blimpy.Waterfall(str(path))
    with open_observation(path, coarse_channel_width=WIDTH) as obs:
        for key in ("fch1", "foff", "nchans", "tsamp", "tstart", "nifs", "nbits", "telescope_id",
                    "machine_id", "data_type", "az_start", "za_start"):
            assert obs.header[key] == pytest.approx(ref.header[key], rel=1e-12), key
        assert obs.header["source_name"] == ref.header["source_name"]
        assert obs.header["src_raj"] == pytest.approx(ref.header["src_raj"].to_value("hourangle"), abs=1e-6)
        assert obs.header["src_dej"] == pytest.approx(ref.header["src_dej"].to_value("deg"), abs=1e-6)
        assert obs.n_time == ref.data.shape[0] == 16
        assert obs.n_coarse_channels == N_COARSE
        expected = ref.data[:, 0, :].astype(np.float32)
        for i, block in obs.iter_coarse_channels():
            assert block.dtype == np.float32 and block.shape == (16, WIDTH)
            np.testing.assert_array_equal(block, expected[:, i * WIDTH:(i + 1) * WIDTH])
        np.testing.assert_allclose(obs.frequencies(0, obs.n_chans), ref.get_freqs(), rtol=0, atol=1e-9)


def test_8bit_samples_are_integers(blimpy_files):
    with open_observation(blimpy_files["u8.fil"], coarse_channel_width=WIDTH) as obs:
        block = obs.coarse_channel(0)
    assert np.array_equal(block, np.round(block)) and block.max() <= 127


@pytest.mark.parametrize("ext", [".fil", ".h5"])
@pytest.mark.parametrize("nbits", [8, 16, 32])
def test_our_writers_are_read_back_identically_by_blimpy(blimpy, tmp_path, ext, nbits):
    from bl_reservoir.io import write_fil, write_h5
    from bl_reservoir.synth import bl_header

    rng = np.random.default_rng(0)
    data = rng.integers(0, 120, size=(16, 2048)).astype(np.float32)
    header = {**bl_header(2048), "nbits": nbits, "source_name": "HIP65057"}
    path = tmp_path / f"ours{ext}"
    (write_fil if ext == ".fil" else write_h5)(path, header, data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = blimpy.Waterfall(str(path))
    np.testing.assert_array_equal(ref.data[:, 0, :].astype(np.float32), data)
    assert ref.header["source_name"] == "HIP65057"
    assert ref.header["nbits"] == nbits
    assert ref.header["foff"] == header["foff"] and ref.header["fch1"] == header["fch1"]
    assert ref.header["src_raj"].to_value("hourangle") == pytest.approx(header["src_raj"], abs=1e-6)
    assert ref.header["src_dej"].to_value("deg") == pytest.approx(header["src_dej"], abs=1e-6)
    with open_observation(path, coarse_channel_width=1024) as obs:
        np.testing.assert_array_equal(obs.read_channels(0, 2048), data)
