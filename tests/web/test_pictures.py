"""Pictures: axes from the header, frequency increasing to the right, PNG sizes, one render per key."""

from __future__ import annotations

import numpy as np
import pytest
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


def test_a_huge_stamp_is_drawn_from_the_columns_around_its_track_only(tmp_path):
    """A result whose stamp is 16 x 2,000,000 float32 (128 MB; a sparse file here): the waterfall and
    the thumbnail read at most `MAX_COLUMNS` columns, so the request costs megabytes, not gigabytes."""
    import tracemalloc

    import pandas as pd
    from _webapp import make_client

    from bl_reservoir.results import build_manifest, write_results
    from bl_reservoir.web.pictures import MAX_COLUMNS

    width, centre = 2_000_000, 1_000_000
    bucket = tmp_path / "bucket"
    stamps = np.lib.format.open_memmap(tmp_path / "big.npy", mode="w+", dtype=np.float32, shape=(1, 16, width))
    stamps[0, :, centre] = 100.0   # the hit's track: a line in the centre (dedoppler stamps are centred)
    hits = pd.DataFrame({"index": [5_000_000], "freqs": [1500.0], "coarse_channel": [4], "drift_rate": [0.0],
                         "snr": [50.0]})
    manifest = build_manifest(algorithm={"package": "dedoppler", "name": "search", "version": "test"},
                              input_uri="/data/huge.h5")
    write_results(bucket / "huge" / "dedoppler" / "search", HEADER, hits, stamps, manifest)
    del stamps
    waterfall_png(np.zeros((16, 64), np.float32), HEADER, {"index": 0})   # the figure exists before measuring
    with make_client(bucket, tmp_path / "store.db", token="") as client:
        if client.app.state.indexer is not None:
            client.app.state.indexer.join(60)
        tracemalloc.start()
        try:
            full = client.get("/api/observations/huge/dedoppler/search/hits/0.png")
            thumb = client.get("/api/observations/huge/dedoppler/search/hits/0.png?size=thumb")
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert full.status_code == thumb.status_code == 200
    assert png_size(full.content) == (800, 640) and png_size(thumb.content)[1] == 96
    assert peak < 40 * 2**20, f"{peak / 2**20:.0f} MiB"   # the stamp's row alone is 128 MB
    assert MAX_COLUMNS * 16 * 4 < 2**20


def test_a_stamp_window_keeps_the_hit_in_view():
    from bl_reservoir.web.pictures import MAX_COLUMNS, MAX_ROWS, PictureTooLarge, StampWindow

    hit = {"index": 700, "drift_rate": 0.1}
    window = StampWindow(HEADER, hit)
    assert window(16, 801) == slice(0, 801) and window.hit == hit   # narrow: whole, hit unchanged
    columns = window(16, 2_000_000)
    assert columns.stop - columns.start == MAX_COLUMNS and columns.start < 1_000_000 < columns.stop
    assert reference_column(window.hit, MAX_COLUMNS) == 1_000_000 - columns.start
    edge = StampWindow(HEADER, {"index": 3})   # energy detection: the track starts at column 0
    assert edge(16, 100_000) == slice(0, MAX_COLUMNS) and reference_column(edge.hit, MAX_COLUMNS) == 0
    with pytest.raises(PictureTooLarge) as info:
        StampWindow(HEADER, hit)(MAX_ROWS + 1, 10)
    assert str(info.value) == f"the stamp has {MAX_ROWS + 1} integrations, more than the {MAX_ROWS} a picture draws"


def test_a_stamp_too_tall_to_draw_is_a_422_with_one_line(tmp_path):
    import pandas as pd
    from _webapp import make_client

    from bl_reservoir.results import build_manifest, write_results
    from bl_reservoir.web.pictures import MAX_ROWS

    manifest = build_manifest(algorithm={"package": "dedoppler", "name": "search", "version": "test"},
                              input_uri="/data/tall.h5")
    hits = pd.DataFrame({"index": [5], "freqs": [1500.0], "coarse_channel": [0], "drift_rate": [0.0], "snr": [9.0]})
    write_results(tmp_path / "bucket" / "tall" / "dedoppler" / "search", HEADER, hits,
                  np.zeros((1, MAX_ROWS + 1, 8), np.float32), manifest)
    with make_client(tmp_path / "bucket", tmp_path / "store.db", token="") as client:
        if client.app.state.indexer is not None:
            client.app.state.indexer.join(60)
        answer = client.get("/api/observations/tall/dedoppler/search/hits/0.png")
    assert answer.status_code == 422
    assert answer.json() == {"detail": f"the stamp has {MAX_ROWS + 1} integrations, more than the {MAX_ROWS} a "
                                       "picture draws"}


def _drifting_stamp(drift_hz_s: float, amplitude: float = 10.0, n_time: int = 16, width: int = 801) -> np.ndarray:
    """Noise with a signal starting at the centre column and drifting `drift_hz_s` (HEADER's foff < 0: a
    positive drift goes to lower columns of the stored stamp)."""
    stamp = np.random.default_rng(2).normal(size=(n_time, width)).astype(np.float32)
    step_hz = HEADER["foff"] * 1e6
    for t in range(n_time):
        stamp[t, width // 2 + int(round(drift_hz_s * t * HEADER["tsamp"] / step_hz))] += amplitude
    return stamp


def test_the_dedrifted_spectrum_adds_a_drifting_signal_up_where_it_starts():
    from bl_reservoir.web.pictures import dedrifted_mean

    image, offsets, duration = stamp_axes(_drifting_stamp(0.5), HEADER, {"index": 0, "drift_rate": 0.5})
    step = offsets[1] - offsets[0]
    mean = dedrifted_mean(image, step, duration / image.shape[0], 0.5)
    start = int(np.argmax(mean))
    assert start == image.shape[1] - 1 - 400 and mean[start] > 9.0      # the whole amplitude in one column
    assert image.mean(axis=0).max() < 2.0                                # the plain mean smears it over ~49
    assert np.isfinite(mean).all()
    rows = np.arange(4.0)[:, None] * np.ones((4, 6))    # row t holds t
    assert dedrifted_mean(rows, 1.0, 1.0, 0.0).tolist() == [1.5] * 6
    # rows shifted 0, 2, 4 and 6 columns: the last falls out, and fewer rows reach the right-hand columns
    assert dedrifted_mean(rows, 1.0, 1.0, 2.0).tolist() == [1.0, 1.0, 0.5, 0.5, 0.0, 0.0]


def test_the_drift_path_frames_the_track_in_a_visible_colour():
    """Two dashed lines beside the track, one each side (was one white line on top of the signal, white on
    white for a zero-drift hit)."""
    from matplotlib.colors import to_rgb

    from bl_reservoir.web import pictures

    for drift in (0.5, 0.0):
        hit = {"index": 1000, "freqs": 1500.99, "drift_rate": drift, "freq_start": 1500.99}
        waterfall_png(_drifting_stamp(drift), HEADER, hit)
        figure = pictures._WATERFALL[0]
        left, right = (np.asarray(line.get_xdata()) for line in figure.track)
        step = abs(HEADER["foff"]) * 1e6
        track = np.array([0.0, drift * 15 * HEADER["tsamp"]])   # first and last integrations' centres
        assert np.allclose(left, track - (right - track)) and np.all(right - track >= 3 * step), drift
        assert all(line.get_visible() and line.get_linestyle() == "--" for line in figure.track)
        assert to_rgb(figure.track[0].get_color()) not in ((1.0, 1.0, 1.0), to_rgb("#fde725"))   # viridis' top
        assert "de-drifted" in figure.spectrum.get_ylabel()
    waterfall_png(_drifting_stamp(0.0), HEADER, {"index": 3})   # energy detection: no drift, no lines
    assert not any(line.get_visible() for line in pictures._WATERFALL[0].track)


def test_a_dollar_in_the_source_name_is_drawn_as_it_is(tmp_path):
    """matplotlib would read `$...$` as maths and fail on it: the picture was a 500."""
    from _webapp import OTHER, make_client, write_fake_result

    from bl_reservoir.web import pictures

    write_fake_result(tmp_path / "bucket", OTHER, 2, source="PSR $x^$ J1234")
    with make_client(tmp_path / "bucket", tmp_path / "store.db", token="") as client:
        client.app.state.indexer.join(60)
        answer = client.get(f"/api/observations/{OTHER}/energy_detection/preprocess_fine/hits/1.png")
        assert answer.status_code == 200 and png_size(answer.content) == (800, 640)
    assert pictures._WATERFALL[0].ax.get_title().startswith("PSR $x^$ J1234\nhit at ")
    long = "S" * 200
    waterfall_png(np.zeros((16, 64), np.float32), {**HEADER, "source_name": long}, {"index": 0, "freqs": 1.0})
    assert pictures._WATERFALL[0].ax.get_title().split("\n")[0] == "S" * (pictures.TITLE_CHARS - 1) + "…"
