"""Cadence events on a synthetic ABACAD cadence: ON-only drifting signals pass; signals in every file, in
the OFFs only, or in one ON only do not."""

from __future__ import annotations

import pandas as pd
import pytest

from bl_reservoir.cli import main as cli_main
from bl_reservoir.dedoppler.events import EVENT_COLUMNS, find_events, load_cadence
from bl_reservoir.dedoppler.search import main as search_main
from bl_reservoir.synth import Signal, make_cadence

ON_ONLY = Signal(2000, 0.1, 50.0, 4.0)
EVERYWHERE = Signal(1000, -0.2, 50.0, 4.0)
OFF_ONLY = Signal(3000, 0.15, 50.0, 4.0)
ONE_ON = Signal(3600, -0.1, 50.0, 4.0)


@pytest.fixture(scope="module")
def cadence(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cadence")
    paths, truth = make_cadence(folder, [(ON_ONLY, (0, 2, 4)), (EVERYWHERE, range(6)), (OFF_ONLY, (1, 3, 5)),
                                         (ONE_ON, (2,))], coarse_channel_width=4096, seed=2)
    results = []
    for path in paths:
        assert search_main([str(path), "--max-drift", "1", "--quiet"]) == 0
        results.append(path.with_suffix(""))
    return results, truth


def _freq(truth, signal, file=0):
    """The injected frequency (MHz) of `signal` (known by its drift rate) at the start of `file`."""
    rows = truth[(truth.file == file) & ((truth.drift_rate - signal.drift_rate).abs() < 1e-9)]
    return float(rows.freq_start.iloc[0])


def test_filter_three_keeps_only_the_signal_in_every_on(cadence):
    results, truth = cadence
    events = find_events(load_cadence(results), filter_threshold=3)
    assert list(events.columns) == EVENT_COLUMNS
    assert events["Hit_ID"].nunique() == 1 and len(events) == 3
    assert sorted(events["status"]) == ["on_table_1", "on_table_2", "on_table_3"]
    assert events["Freq"].iloc[0] == pytest.approx(_freq(truth, ON_ONLY), abs=5e-6)
    assert events["DriftRate"].abs().max() == pytest.approx(0.1, abs=0.02)


def test_filter_two_drops_the_signal_seen_in_the_offs(cadence):
    results, truth = cadence
    events = find_events(load_cadence(results), filter_threshold=2)
    everywhere = _freq(truth, EVERYWHERE)
    assert not ((events["Freq"] - everywhere).abs() < 1e-3).any()
    # the ON-only signal in each ON, and the one-ON signal: in some ON and no OFF
    assert len(events) == 4 and (events["RFI_in_range"] == 0).all()
    assert ((events["Freq"] - _freq(truth, ONE_ON, 2)).abs() < 3e-6).sum() == 1
    one = find_events(load_cadence(results), filter_threshold=1)
    assert len(one) == 7  # two signals in all three ONs, one in the second ON only


def test_only_the_on_only_signal_is_an_event(cadence):
    results, truth = cadence
    events = find_events(load_cadence(results), filter_threshold=3)
    (only,) = events["Hit_ID"].unique()
    for on, row in zip((0, 2, 4), events.itertuples()):
        assert row.Freq == pytest.approx(_freq(truth, ON_ONLY, file=on), abs=3e-6)
        assert row.DriftRate == pytest.approx(ON_ONLY.drift_rate, abs=0.02)
    for signal, files in ((EVERYWHERE, (0,)), (OFF_ONLY, (1,)), (ONE_ON, (2,))):
        assert not ((events["Freq"] - _freq(truth, signal, files[0])).abs() < 2e-3).any(), signal


def test_events_command_writes_csv_and_pictures(cadence, tmp_path, capsys):
    results, _ = cadence
    out = tmp_path / "events"
    assert cli_main(["events", *map(str, results), "--filter-threshold", "3", "--out", str(out)]) == 0
    assert "1 event(s) at filter 3" in capsys.readouterr().out
    assert (out / "events.csv").read_text().splitlines()[0].split(",")[1:] == EVENT_COLUMNS
    assert sorted(p.name for p in out.glob("*.png")) == ["event_000.png"]
    assert (out / "event_000.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = pd.read_parquet(out / "events.parquet")
    assert list(table.columns) == EVENT_COLUMNS and len(table) == 3


def test_events_command_reads_observation_names_in_a_bucket(cadence, tmp_path, capsys):
    """`bl-reservoir events OBS...` with --bucket finds `<bucket>/<obs>/dedoppler/search`."""
    import shutil

    results, _ = cadence
    bucket = tmp_path / "bucket"
    for folder in results:
        shutil.copytree(folder, bucket / folder.name / "dedoppler" / "search")
    out = tmp_path / "events"
    assert cli_main(["events", *(r.name for r in results), "--bucket", str(bucket), "--out", str(out),
                     "--no-plots"]) == 0
    assert "1 event(s) at filter 3" in capsys.readouterr().out


def test_dat_files_work_as_inputs_and_bad_inputs_are_errors(cadence, tmp_path, capsys):
    results, _ = cadence
    dats = [next(r.glob("*.dat")) for r in results]
    events = find_events(load_cadence(dats), filter_threshold=3)
    assert events["Hit_ID"].nunique() == 1
    assert cli_main(["events", str(tmp_path), str(tmp_path)]) == 4
    assert "no .dat file" in capsys.readouterr().err
