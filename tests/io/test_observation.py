"""Coarse-channel rule, frequencies, and memory that does not grow with the file."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from bl_reservoir.errors import InvalidObservation, ReservoirWarning
from bl_reservoir.io import coarse_channel_width, open_observation, write_fil, write_h5
from bl_reservoir.synth import bl_header, make_observation


@pytest.mark.parametrize("nchans, nfpc, expected", [
    (64 * 1_048_576, None, 1_048_576),
    (4 * 1_033_216, None, 1_033_216),
    (3 * 999_424, None, 999_424),
    (8192, 1024, 1024),
    (2 * 1_048_576, 65536, 65536),
])
def test_coarse_channel_rule(nchans, nfpc, expected):
    header = {"nchans": nchans, **({"nfpc": nfpc} if nfpc else {})}
    assert coarse_channel_width(header) == expected


def test_unknown_width_is_one_coarse_channel_with_a_warning():
    with pytest.warns(ReservoirWarning, match="whole band as one coarse channel"):
        assert coarse_channel_width({"nchans": 5000}) == 5000


def test_frequencies_and_bounds(tmp_path):
    path = tmp_path / "f.h5"
    write_h5(path, {**bl_header(4096), "nfpc": 1024}, np.zeros((2, 4096), np.float32))
    with open_observation(path) as obs:
        assert (obs.n_coarse_channels, obs.coarse_channel_width, obs.n_time) == (4, 1024, 2)
        freqs = obs.frequencies(10, 13)
        assert freqs[0] == pytest.approx(1501.0 - 10 * 2.7939677238464355e-6, abs=1e-12)
        assert np.allclose(np.diff(freqs), obs.header["foff"])
        assert obs.coarse_channel_bounds(3) == (3072, 4096)
        with pytest.raises(IndexError):
            obs.coarse_channel(4)
        assert obs.name == "f"


_PEAK = textwrap.dedent("""
    import json, resource, sys, tracemalloc
    from bl_reservoir.io import open_observation
    tracemalloc.start()
    with open_observation(sys.argv[1]) as obs:
        total = 0.0
        for i, block in obs.iter_coarse_channels(read_ahead=sys.argv[2] == "1"):
            total += float(block[0, 0])
            del block
    print(json.dumps({"peak": tracemalloc.get_traced_memory()[1],
                      "rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
""")


def _measure(path, read_ahead: bool = False) -> dict:
    out = subprocess.run([sys.executable, "-c", _PEAK, str(path), str(int(read_ahead))],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.slow
@pytest.mark.parametrize("read_ahead", [False, True])
@pytest.mark.parametrize("ext", [".fil", ".h5"])
def test_peak_memory_is_one_coarse_channel(tmp_path, ext, read_ahead):
    width = 131072
    one = 16 * width * 4  # bytes of one float32 coarse channel
    small, _ = make_observation(tmp_path / f"two{ext}", n_coarse_channels=2, coarse_channel_width=width,
                                n_signals=0, seed=0)
    big, _ = make_observation(tmp_path / f"eight{ext}", n_coarse_channels=8, coarse_channel_width=width,
                              n_signals=0, seed=0)
    m2, m8 = _measure(small, read_ahead), _measure(big, read_ahead)
    # Python-level allocations: one block (plus the conversion copy for 8/16-bit) at a time;
    # reading ahead adds the next block, and never more
    assert m8["peak"] < (3.2 if read_ahead else 2.2) * one, m8
    assert m8["peak"] < m2["peak"] * 1.2 + 65536
    if ext == ".h5":  # no memory map: resident memory must not grow with the number of coarse channels
        assert (m8["rss_kb"] - m2["rss_kb"]) * 1024 < one, (m2, m8)


@pytest.mark.parametrize("ext", [".fil", ".h5"])
def test_reading_ahead_yields_the_same_blocks_in_order(tmp_path, ext):
    path, _ = make_observation(tmp_path / f"ahead{ext}", n_coarse_channels=3, coarse_channel_width=2048,
                               n_signals=2, seed=4)
    with open_observation(path) as obs:
        plain = [(i, block.copy()) for i, block in obs.iter_coarse_channels()]
        ahead = [(i, block.copy()) for i, block in obs.iter_coarse_channels(read_ahead=True)]
    assert [i for i, _ in ahead] == [0, 1, 2]
    for (_, a), (_, b) in zip(plain, ahead):
        np.testing.assert_array_equal(a, b)


def test_reading_ahead_reports_a_bad_block_where_it_is_read(tmp_path):
    # a damaged chunk is simulated by the reader raising for coarse channel 2 (an intact file
    # cannot be damaged there without also failing the checks made when it is opened)
    path, _ = make_observation(tmp_path / "cut.h5", n_coarse_channels=4, coarse_channel_width=2048,
                               n_signals=0, seed=5)
    got = []
    with open_observation(path) as obs, pytest.raises(InvalidObservation, match="cut.h5: chunk") as info:
        read = obs._read

        def damaged(start: int, stop: int) -> np.ndarray:
            if start >= 2 * 2048:
                raise InvalidObservation(obs.path, "chunk unreadable")
            return read(start, stop)

        obs._read = damaged
        for i, _ in obs.iter_coarse_channels(read_ahead=True):
            got.append(i)
    assert got == [0, 1]  # the blocks before the bad one reach the caller; nothing after it
    assert len(str(info.value).splitlines()) == 1


@pytest.mark.parametrize("ext", [".fil", ".h5"])
def test_missing_samples_become_their_channels_median_with_one_warning(tmp_path, ext):
    rng = np.random.default_rng(6)
    data = rng.normal(10.0, 1.0, (8, 4 * 256)).astype(np.float32)
    clean = data.copy()
    data[2, 5] = np.nan
    data[[0, 7], 9] = [np.inf, -np.inf]
    data[:, 40] = np.nan  # a whole channel: no finite sample to take a median of
    data[4, 256:512] = np.nan  # a whole spectrum of the second coarse channel
    data[6, 512:768] = 0.0  # a dropped integration in the third
    data[:, 768:] = 0.0  # a coarse channel nobody recorded: left as it is
    path = tmp_path / f"holes{ext}"
    (write_h5 if ext == ".h5" else write_fil)(path, bl_header(1024), data)
    with open_observation(path, coarse_channel_width=256) as obs, pytest.warns(ReservoirWarning) as caught:
        blocks = [obs.coarse_channel(cc) for cc in range(4)]
    assert [str(w.message) for w in caught] == [
        f"{path}: channels {lo}..{lo + 256}: {what} replaced by their channel's median over time" for lo, what in [
            (0, "11 NaN or infinite samples in 3 channels"), (256, "256 NaN or infinite samples in 256 channels"),
            (512, "1 all-zero spectra in 256 channels")]]
    first = blocks[0]
    assert first[2, 5] == np.median(np.delete(clean[:, 5], 2))
    np.testing.assert_array_equal(first[[0, 7], 9], np.median(clean[1:7, 9]))
    finite = np.delete(clean[:, :256], 40, axis=1)
    np.testing.assert_array_equal(first[:, 40], np.median(np.delete(finite.ravel(), [2 * 255 + 5, 9, 7 * 255 + 9])))
    untouched = np.ones(256, dtype=bool)
    untouched[[5, 9, 40]] = False
    np.testing.assert_array_equal(first[:, untouched], clean[:, :256][:, untouched])
    for cc, row in ((1, 4), (2, 6)):
        lo = 256 * cc
        np.testing.assert_array_equal(blocks[cc][row], np.median(np.delete(clean[:, lo:lo + 256], row, axis=0), axis=0))
        np.testing.assert_array_equal(np.delete(blocks[cc], row, axis=0), np.delete(clean[:, lo:lo + 256], row, axis=0))
    assert not blocks[3].any()


def test_a_block_with_no_finite_sample_is_refused(tmp_path):
    path = tmp_path / "void.h5"
    write_h5(path, bl_header(256), np.full((4, 256), np.nan, dtype=np.float32))
    with open_observation(path, coarse_channel_width=256) as obs, \
            pytest.raises(InvalidObservation, match=r"void.h5: channels 0..256: no sample is finite and non-zero"):
        obs.coarse_channel(0)
