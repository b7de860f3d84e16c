import numpy as np
import pytest

from bl_reservoir.errors import UsageError
from bl_reservoir.sensitivity.grid import Grid, parse_spec, quick_grid


def test_parse_spec_forms():
    assert parse_spec("5:50:10") == (5.0, 10.0, 15.0, 20.0, 25.0, 30.0, 35.0, 40.0, 45.0, 50.0)
    assert parse_spec("-4:4:9") == (-4.0, -3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0, 4.0)
    assert parse_spec("2:20:3") == (2.0, 11.0, 20.0)
    assert parse_spec("2:20") == (2.0, 20.0)
    assert parse_spec("8") == (8.0,)
    assert parse_spec("3:9:1") == (3.0,)


@pytest.mark.parametrize("bad", ["a:b:3", "1:2:0", "1:2:3:4", "", "1:nan:2"])
def test_parse_spec_refuses(bad):
    with pytest.raises(UsageError, match="--snr"):
        parse_spec(bad, name="snr")


def test_grid_injections_cover_every_point_per_trial():
    grid = Grid((10.0, 20.0), (-1.0, 0.0, 1.0), (4.0,), trials=3)
    table = grid.injections(seed=1)
    assert grid.n_signals == len(table) == 2 * 3 * 1 * 2 * 3
    counts = table.groupby(["snr", "drift_rate", "width", "doppler_smearing"]).size()
    assert set(counts) == {3}
    assert (table["snr_bin"] == table["snr"]).all() and (table["drift_bin"] == table["drift_rate"]).all()
    # seeded shuffle: same seed same order, another seed another order
    assert table.equals(grid.injections(seed=1))
    assert not table.equals(grid.injections(seed=2))


def test_latin_hypercube_stays_in_range_and_bins_to_nearest_value():
    grid = Grid((5.0, 25.0, 45.0), (-4.0, 0.0, 4.0), (2.0, 20.0), trials=4, sampling="lhs")
    table = grid.injections(seed=3)
    assert len(table) == grid.n_signals
    assert table["snr"].between(5, 45).all() and table["drift_rate"].between(-4, 4).all()
    nearest = np.array([min(grid.snr, key=lambda c: abs(c - v)) for v in table["snr"]])
    assert (table["snr_bin"].to_numpy() == nearest).all()
    assert set(table["drift_bin"]) <= set(grid.drift_rate)
    # a Latin hypercube puts one draw in each of n equal strata of every axis
    per_smearing = table[~table["doppler_smearing"]]
    strata = np.floor((per_smearing["snr"] - 5) / 40 * len(per_smearing)).clip(0, len(per_smearing) - 1)
    assert sorted(strata.astype(int)) == list(range(len(per_smearing)))


def test_quick_grid_keeps_snr_axis_and_shrinks_the_rest():
    full = Grid(parse_spec("5:50:10"), parse_spec("-4:4:9"), parse_spec("2:20:3"), trials=5)
    quick = quick_grid(full)
    assert quick.snr == full.snr
    assert quick.drift_rate == (-4.0, 0.0, 4.0)
    assert quick.width == (11.0,)
    assert quick.trials == 2 and quick.n_signals == 120


def test_grid_refuses_bad_values():
    with pytest.raises(UsageError, match="trials"):
        Grid((10.0,), (0.0,), (4.0,), trials=0)
    with pytest.raises(UsageError, match="positive"):
        Grid((-1.0,), (0.0,), (4.0,))
