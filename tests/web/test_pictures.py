"""Pictures: axes from the header, frequency increasing to the right, PNG sizes, one render per key."""

from __future__ import annotations

import numpy as np
from _webapp import png_size

from bl_reservoir.web.pictures import (
    PictureCache,
    overview_png,
    reference_column,
    stamp_axes,
    thumbnail_png,
    track_columns,
    waterfall_png,
)

HEADER = {"foff": -2.7939677238464355e-6, "tsamp": 18.253611008, "fch1": 1501.0, "nchans": 8192,
          "source_name": "TEST"}


def test_reference_column():
    assert reference_column({"index": 10}, 256) == 0                       # energy detection: window start
    assert reference_column({"index": 10, "drift_rate": 0.1}, 801) == 400    # dedoppler: centred
    assert reference_column({"index": 10, "stamp_start": 4}, 256) == 6       # explicit


def test_axes_put_frequency_increasing_to_the_right():
    stamp = np.arange(16 * 8, dtype=np.float32).reshape(16, 8)
    image, offsets, duration = stamp_axes(stamp, HEADER, {"index": 0})
    assert np.all(np.diff(offsets) > 0) and offsets[-1] == 0.0  # the window start is the highest frequency
    assert offsets[0] == np.float64(-7 * 2.7939677238464355)
    assert np.array_equal(image[:, 0], stamp[:, -1]) and duration == 16 * 18.253611008
    same, up, _ = stamp_axes(stamp, {**HEADER, "foff": 2.7939677238464355e-6}, {"index": 0})
    assert np.array_equal(same, stamp) and up[0] == 0.0


def test_track_columns_follow_the_drift():
    stamp = np.zeros((16, 801), dtype=np.float32)
    right = track_columns(stamp, HEADER, {"index": 0, "drift_rate": -0.5}, margin=10)  # foff < 0: columns go up
    assert (right.start, right.stop) == (390, 400 + 49 + 11)
    none = track_columns(stamp, HEADER, {"index": 0, "drift_rate": 0.0}, margin=10)
    assert (none.start, none.stop) == (390, 411)


def test_png_sizes():
    rng = np.random.default_rng(1)
    stamp = rng.normal(size=(16, 256)).astype(np.float32)
    assert png_size(waterfall_png(stamp, HEADER, {"index": 5, "freqs": 1500.99, "drift_rate": 0.2,
                                                  "freq_start": 1500.99})) == (800, 640)
    assert png_size(thumbnail_png(stamp, HEADER, {"index": 5})) == (256, 96)
    import pandas as pd

    hits = pd.DataFrame({"freqs": [1500.98, 1500.99], "snr": [12.0, 30.0], "drift_rate": [0.1, -0.2]})
    assert png_size(overview_png(hits, HEADER)) == (900, 360)
    assert png_size(overview_png(hits.iloc[:0], HEADER)) == (900, 360)


def test_constant_and_nan_stamps_still_render():
    flat = np.ones((16, 64), dtype=np.float32)
    assert png_size(thumbnail_png(flat, HEADER, {"index": 0}))[0] == 64
    assert png_size(thumbnail_png(np.full((16, 64), np.nan, dtype=np.float32), HEADER, {"index": 0}))[0] == 64


def test_cache_renders_each_key_once():
    cache = PictureCache(size=2)
    calls = []

    def render():
        calls.append(1)
        return b"png"

    assert cache.get("a", render) == cache.get("a", render) == b"png"
    cache.get("b", render), cache.get("c", render), cache.get("a", render)  # "a" was evicted (size 2)
    assert len(calls) == 4 and cache.renders == 4
