import numpy as np
import pytest

from bl_reservoir.errors import UsageError
from bl_reservoir.sensitivity.grid import Grid, parse_spec
from bl_reservoir.sensitivity.harness import GUARD, Design, place, synthesise


def _design(**kw):
    grid = Grid(parse_spec("10:50:3"), parse_spec("-4:4:3"), (4.0,), trials=2)
    return Design(grid, coarse_channel_width=kw.pop("width", 16384), coarse_channels_per_file=2, seed=5, **kw)


def _extent(design, table):
    steps = np.where(table["doppler_smearing"], design.n_time, design.n_time - 1)
    end = table["index"] + design.geometry.step(table["drift_rate"]) * steps
    return np.minimum(table["index"], end), np.maximum(table["index"], end)


def test_place_keeps_paths_apart_inside_their_coarse_channel_and_off_dc():
    design = _design()
    table = place(design, design.grid.injections(seed=1), seed=2)
    width = design.coarse_channel_width
    lo, hi = _extent(design, table)
    # every path stays inside its own coarse channel, clear of the DC bin
    local_lo = lo - table["coarse_channel"] * width
    local_hi = hi - table["coarse_channel"] * width
    assert (local_lo >= 0).all() and (local_hi < width).all()
    dc = width // 2
    assert not ((local_lo <= dc + 8) & (local_hi >= dc - 8)).any()
    # neighbouring paths in one file are at least an energy-detection window apart
    for _, rows in table.assign(lo=lo, hi=hi).groupby("file_no"):
        rows = rows.sort_values("lo")
        gaps = rows["lo"].to_numpy()[1:] - rows["hi"].to_numpy()[:-1]
        assert gaps.min() > 256
    assert design.slot_width >= 2 * GUARD


def test_place_fills_files_coarse_channel_by_coarse_channel():
    design = _design()
    slots = len(design.slots())
    table = place(design, design.grid.injections(seed=1), seed=2)
    assert len(table) == 36 and slots == 14
    assert list(table.groupby("file_no").size()) == [28, 8]
    assert table.loc[table["file_no"] == 1, "coarse_channel"].max() == 0


def test_too_narrow_coarse_channels_are_refused():
    with pytest.raises(UsageError, match="too narrow"):
        _design(width=1024).slots()


def test_synthesise_writes_files_whose_truth_matches_the_design(tmp_path):
    grid = Grid((30.0,), (0.0, 1.0), (4.0,), doppler_smearing=(False,), trials=1)
    design = Design(grid, coarse_channel_width=4096, coarse_channels_per_file=1, noise_coarse_channels=3, seed=2)
    injected = synthesise(design, tmp_path)
    assert [p.name for p in injected.signal_files] == ["signals_000.h5"]
    assert [p.name for p in injected.noise_files] == ["noise_000.h5", "noise_001.h5", "noise_002.h5"]
    assert injected.noise_bandwidth_mhz == pytest.approx(3 * 4096 * 2.7939677238464355e-6)
    from bl_reservoir.io import open_observation

    data = open_observation(injected.signal_files[0]).coarse_channel(0)
    for row in injected.truth.itertuples():  # the injected power sits where the truth says, at t = 0
        assert abs(int(np.argmax(data[0, row.index - 20:row.index + 21])) - 20) <= 1
