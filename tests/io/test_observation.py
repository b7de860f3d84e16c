"""Coarse-channel rule, frequencies, and memory that does not grow with the file."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from bl_reservoir.errors import ReservoirWarning
from bl_reservoir.io import coarse_channel_width, open_observation, write_h5
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
        for i, block in obs.iter_coarse_channels():
            total += float(block[0, 0])
            del block
    print(json.dumps({"peak": tracemalloc.get_traced_memory()[1],
                      "rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
""")


def _measure(path) -> dict:
    out = subprocess.run([sys.executable, "-c", _PEAK, str(path)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.slow
@pytest.mark.parametrize("ext", [".fil", ".h5"])
def test_peak_memory_is_one_coarse_channel(tmp_path, ext):
    width = 131072
    one = 16 * width * 4  # bytes of one float32 coarse channel
    small, _ = make_observation(tmp_path / f"two{ext}", n_coarse_channels=2, coarse_channel_width=width,
                                n_signals=0, seed=0)
    big, _ = make_observation(tmp_path / f"eight{ext}", n_coarse_channels=8, coarse_channel_width=width,
                              n_signals=0, seed=0)
    m2, m8 = _measure(small), _measure(big)
    # Python-level allocations: one block (plus the conversion copy for 8/16-bit) at a time.
    assert m8["peak"] < 2.2 * one, m8
    assert m8["peak"] < m2["peak"] * 1.2 + 65536
    if ext == ".h5":  # no memory map: resident memory must not grow with the number of coarse channels
        assert (m8["rss_kb"] - m2["rss_kb"]) * 1024 < one, (m2, m8)
