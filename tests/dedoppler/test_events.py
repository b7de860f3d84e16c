"""Cadence events on a synthetic ABACAD cadence: ON-only signals pass, signals everywhere do not."""

from __future__ import annotations

import pytest

from bl_reservoir.cli import main as cli_main
from bl_reservoir.dedoppler.events import EVENT_COLUMNS, find_events, load_cadence
from bl_reservoir.dedoppler.search import main as search_main
from bl_reservoir.synth import Signal, make_cadence

ON_ONLY = Signal(2000, 0.1, 50.0, 4.0)
EVERYWHERE = Signal(1000, -0.2, 50.0, 4.0)


@pytest.fixture(scope="module")
def cadence(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cadence")
    paths, truth = make_cadence(folder, [(ON_ONLY, (0, 2, 4)), (EVERYWHERE, range(6))],
                                coarse_channel_width=4096, seed=2)
    results = []
    for path in paths:
        assert search_main([str(path), "--max-drift", "1", "--quiet"]) == 0
        results.append(path.with_suffix(""))
    return results, truth


def _freq(truth, signal_index):
    first = truth[(truth.file == 0) & ((truth["index"] - signal_index).abs() <= 1)]
    return float(first.freq_start.iloc[0])


def test_filter_three_keeps_only_the_signal_in_every_on(cadence):
    results, truth = cadence
    events = find_events(load_cadence(results), filter_threshold=3)
    assert list(events.columns) == EVENT_COLUMNS
    assert events["Hit_ID"].nunique() == 1 and len(events) == 3
    assert sorted(events["status"]) == ["on_table_1", "on_table_2", "on_table_3"]
    assert events["Freq"].iloc[0] == pytest.approx(_freq(truth, ON_ONLY.index), abs=5e-6)
    assert events["DriftRate"].abs().max() == pytest.approx(0.1, abs=0.02)


def test_filter_two_drops_the_signal_seen_in_the_offs(cadence):
    results, truth = cadence
    events = find_events(load_cadence(results), filter_threshold=2)
    everywhere = _freq(truth, EVERYWHERE.index)
    assert not ((events["Freq"] - everywhere).abs() < 1e-3).any()
    assert len(events) == 3 and (events["RFI_in_range"] == 0).all()
    one = find_events(load_cadence(results), filter_threshold=1)
    assert len(one) == 6  # both signals in all three ONs


def test_events_command_writes_csv_and_pictures(cadence, tmp_path, capsys):
    results, _ = cadence
    out = tmp_path / "events"
    assert cli_main(["events", *map(str, results), "--filter-threshold", "3", "--out", str(out)]) == 0
    assert "1 event(s) at filter 3" in capsys.readouterr().out
    assert (out / "events.csv").read_text().splitlines()[0].split(",")[1:] == EVENT_COLUMNS
    pictures = sorted(out.glob("*.png"))
    assert len(pictures) == 1 and pictures[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_dat_files_work_as_inputs_and_bad_inputs_are_errors(cadence, tmp_path, capsys):
    results, _ = cadence
    dats = [next(r.glob("*.dat")) for r in results]
    events = find_events(load_cadence(dats), filter_threshold=3)
    assert events["Hit_ID"].nunique() == 1
    assert cli_main(["events", str(tmp_path), str(tmp_path)]) == 4
    assert "no .dat file" in capsys.readouterr().err
