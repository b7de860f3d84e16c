"""Cadences from headers: ON/OFF patterns, bands, gaps, interleaved inputs, lists, and refusals with reasons."""

from __future__ import annotations

import random

import pytest

from bl_reservoir.errors import UsageError
from bl_reservoir.io.cadence import (
    ObservationSummary,
    group_cadences,
    is_on_off,
    read_cadence_list,
    summarize,
    summarize_all,
)
from bl_reservoir.synth import make_cadence

OBS_S = 300.0


def _cadence(target: str, offs: tuple[str, str, str], t0: float, band=(1100.0, 1200.0), prefix="") -> list:
    sources = [target, offs[0], target, offs[1], target, offs[2]]
    return [ObservationSummary(f"/d/{prefix}{target}_{k}_{s}.h5", s, t0 + k * (OBS_S + 30) / 86400, *band, OBS_S)
            for k, s in enumerate(sources)]


def test_on_off_patterns():
    assert is_on_off(["A", "B", "A", "C", "A", "D"])           # ABACAD
    assert is_on_off(["hip1", "X", "HIP1", "X", "Hip1 ", "X"])  # ABABAB, names compared as BL writes them
    assert not is_on_off(["A", "A", "A", "C", "A", "D"])
    assert not is_on_off(["A", "B", "C", "B", "A", "B"])
    assert not is_on_off(["", "B", "", "B", "", "B"])


def test_two_interleaved_cadences_of_different_targets_in_one_campaign():
    one = _cadence("HIP1", ("B", "C", "D"), 60000.0)
    two = _cadence("HIP2", ("E", "F", "G"), 60000.2)
    mixed = [x for pair in zip(one, two) for x in pair]
    random.Random(3).shuffle(mixed)
    cadences, refused = group_cadences(mixed)
    assert refused == []
    assert [c.id for c in cadences] == ["HIP1_0_HIP1", "HIP2_0_HIP2"]
    assert [c.keys for c in cadences] == [[o.key for o in one], [o.key for o in two]]
    assert cadences[0].target == "HIP1" and cadences[1].band == (1100.0, 1200.0)


def test_the_same_times_in_two_bands_are_two_cadences():
    low = _cadence("HIP1", ("B", "C", "D"), 60000.0, band=(1100.0, 1200.0), prefix="blc00_")
    high = _cadence("HIP1", ("B", "C", "D"), 60000.0, band=(1200.0, 1300.0), prefix="blc01_")
    cadences, refused = group_cadences(high + low)
    assert sorted(c.id for c in cadences) == ["blc00_HIP1_0_HIP1", "blc01_HIP1_0_HIP1"] and refused == []


def test_an_incomplete_cadence_is_refused_with_a_reason():
    five = _cadence("HIP1", ("B", "C", "D"), 60000.0)[:5]
    cadences, refused = group_cadences(five)
    assert cadences == []
    (why,) = refused
    assert why.keys == tuple(o.key for o in five)
    assert why.reason.startswith("5 observation(s) from MJD 60000.00000 (HIP1 B HIP1 C HIP1)")
    assert "a cadence needs 6 of one band" in why.reason


def test_a_gap_splits_and_a_wrong_pattern_is_refused():
    full = _cadence("HIP1", ("B", "C", "D"), 60000.0)
    late = [*full[:3], *(ObservationSummary(o.key, o.source, o.tstart + 0.05, o.fmin_mhz, o.fmax_mhz, o.duration_s)
                         for o in full[3:])]          # 72 min between the third and fourth
    cadences, refused = group_cadences(late)
    assert cadences == [] and len(refused) == 2 and all("a cadence needs 6" in r.reason for r in refused)
    assert group_cadences(late, max_gap_s=2 * 3600)[0][0].id == "HIP1_0_HIP1"
    swapped = [full[1], full[0], *full[2:]]
    swapped = [ObservationSummary(o.key, o.source, full[k].tstart, o.fmin_mhz, o.fmax_mhz, o.duration_s)
               for k, o in enumerate(swapped)]
    cadences, refused = group_cadences(swapped)
    assert cadences == [] and "do not follow ON, OFF" in refused[0].reason


def test_a_stray_observation_before_a_cadence_is_refused_and_the_cadence_kept():
    stray = ObservationSummary("/d/stray.h5", "HIP9", 60000.0 - 400 / 86400, 1100.0, 1200.0, OBS_S)
    cadences, refused = group_cadences([stray, *_cadence("HIP1", ("B", "C", "D"), 60000.0)])
    assert [c.id for c in cadences] == ["HIP1_0_HIP1"]
    assert [r.keys for r in refused] == [("/d/stray.h5",)]


def test_cadence_list_as_find_event_pipeline_takes_it(tmp_path):
    listing = tmp_path / "cadences.txt"
    listing.write_text("# ON first\na.h5 b.h5 c.h5 d.h5 e.h5 f.h5\n\ng.h5,h.h5,i.h5,j.h5,k.h5,l.h5  # second\n")
    assert read_cadence_list(listing)[0] == ["a.h5", "b.h5", "c.h5", "d.h5", "e.h5", "f.h5"]
    assert read_cadence_list(listing)[1] == ["g.h5", "h.h5", "i.h5", "j.h5", "k.h5", "l.h5"]
    listing.write_text("a.h5 b.h5 c.h5\n")
    with pytest.raises(UsageError, match=r"cadences.txt:1: a cadence line holds 6 inputs \(ON first\), not 3"):
        read_cadence_list(listing)


def test_summaries_from_local_and_remote_headers(tmp_path, http_root):
    paths, _ = make_cadence(tmp_path / "c", n_coarse_channels=1, coarse_channel_width=1024, seed=1)
    www, url = http_root
    (www / "remote.h5").write_bytes(paths[1].read_bytes())
    fil = tmp_path / "c" / "x.fil"
    from bl_reservoir.io import open_observation, write_fil

    with open_observation(paths[2]) as obs:
        write_fil(fil, obs.header, obs.read_channels(0, obs.n_chans))
    (www / "remote.fil").write_bytes(fil.read_bytes())
    local = summarize(str(paths[1]))
    remote = summarize(f"{url}/remote.h5")
    assert (remote.source, remote.tstart, remote.fmin_mhz, remote.fmax_mhz, remote.duration_s) == \
        (local.source, local.tstart, local.fmin_mhz, local.fmax_mhz, local.duration_s)
    assert local.duration_s == pytest.approx(16 * 18.253611008) and local.source == "OFF_A"
    assert summarize(f"{url}/remote.fil").tstart == summarize(str(paths[2])).tstart
    found, refused = summarize_all([*map(str, paths), f"{url}/missing.h5"])
    assert group_cadences(found)[0][0].keys == list(map(str, paths))
    assert [r.keys for r in refused] == [(f"{url}/missing.h5",)] and "header not readable" in refused[0].reason
