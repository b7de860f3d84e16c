"""A real run on a tiny grid: both built-ins through the runner, JSON, plots, report and bucket copy."""

import json

import pytest

from bl_reservoir.cli import main

ALGS = ["dedoppler/search", "energy_detection/preprocess_fine"]


def _argv(root):
    return ["sensitivity", *ALGS, "--snr", "5:45:3", "--drift", "0:2:2", "--width", "4", "--trials", "2",
            "--coarse-channel-width", "16384", "--noise-channels", "1", "--seed", "3", "--name", "tiny",
            "--out", str(root / "out"), "--bucket", str(root / "bucket")]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("sens")
    code = main(_argv(root))
    return code, root, json.loads((root / "out" / "sensitivity.json").read_text())


@pytest.mark.slow
def test_json_fields(tiny_run):
    code, _, doc = tiny_run
    assert code == 0
    assert doc["grid"]["snr"] == [5.0, 25.0, 45.0] and doc["grid"]["drift_rate"] == [0.0, 2.0]
    assert doc["grid"]["doppler_smearing"] == [False, True] and doc["grid"]["trials"] == 2
    assert doc["observations"]["n_signals"] == 24
    assert doc["observations"]["noise_bandwidth_mhz"] == pytest.approx(16384 * 2.7939677238464355e-6)
    assert {"channels", "drift_bins", "drift_bin_hz_s", "drift_tolerance_hz_s"} <= set(doc["tolerances"])
    assert list(doc["algorithms"]) == ALGS
    for entry in doc["algorithms"].values():
        assert entry["error"] is None and entry["n_signals"] == 24
        assert [r["snr"] for r in entry["recall_by_snr"]] == [5.0, 25.0, 45.0]
        assert [r["n"] for r in entry["recall_by_snr"]] == [8, 8, 8]
        assert [r["drift_rate"] for r in entry["recall_by_drift"]] == [0.0, 2.0]
        assert [r["width"] for r in entry["recall_by_width"]] == [4.0]
        assert set(entry["doppler_smearing"]) == {"off", "on"}
        assert entry["recall_drift_snr"]["drift_rate"] == [0.0, 2.0]
        assert {"count", "bandwidth_mhz", "per_mhz", "per_mhz_upper_95"} <= set(entry["false_hits"])
    assert doc["algorithms"]["energy_detection/preprocess_fine"]["matching"] == "window"
    assert doc["algorithms"]["dedoppler/search"]["matching"] == "path"


@pytest.mark.slow
@pytest.mark.parametrize("alg", ALGS)
def test_recall_rises_with_snr(tiny_run, alg):
    recall = [r["recall"] for r in tiny_run[2]["algorithms"][alg]["recall_by_snr"]]
    assert recall[0] == 0.0                       # SNR 5 is below both detection thresholds
    assert recall[-1] >= 0.5                      # SNR 45 unsmeared signals are all found
    assert all(b >= a for a, b in zip(recall, recall[1:]))
    off = tiny_run[2]["algorithms"][alg]["doppler_smearing"]["off"]["recall_by_snr"]
    assert off[-1]["recall"] == 1.0


@pytest.mark.slow
def test_report_files_and_bucket_copy(tiny_run):
    _, root, doc = tiny_run
    names = {"sensitivity.json", "report.md", *doc["plots"].values()}
    assert names <= {p.name for p in (root / "out").iterdir()}
    assert names <= {p.name for p in (root / "bucket" / "sensitivity" / "tiny").iterdir()}
    for png in doc["plots"].values():
        assert (root / "out" / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = (root / "out" / "report.md").read_text()
    assert "| `dedoppler/search` | path |" in text and "![recall vs snr](recall_vs_snr.png)" in text


@pytest.mark.slow
def test_reuse_keeps_inputs_and_results(tiny_run):
    _, root, doc = tiny_run
    kept = sorted((root / "out").glob("inputs/*.h5")) + sorted((root / "out").glob("runs/*/*/*/manifest.json"))
    assert len(kept) == 2 + 2 * 2
    before = {p: p.stat().st_mtime_ns for p in kept}
    assert main([*_argv(root), "--reuse"]) == 0
    assert {p: p.stat().st_mtime_ns for p in kept} == before
    again = json.loads((root / "out" / "sensitivity.json").read_text())
    for alg in ALGS:
        assert again["algorithms"][alg]["recall_by_snr"] == doc["algorithms"][alg]["recall_by_snr"]


def test_unknown_algorithm_is_one_line_error(tmp_path, capsys):
    code = main(["sensitivity", "no_such/alg", "--out", str(tmp_path / "o"), "--bucket", str(tmp_path / "b")])
    err = capsys.readouterr().err
    assert code == 2 and "no_such/alg" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_bad_spec_and_option_are_usage_errors(tmp_path, capsys):
    assert main(["sensitivity", "dedoppler/search", "--snr", "5:x:3", "--out", str(tmp_path)]) == 2
    assert "--snr '5:x:3'" in capsys.readouterr().err
    assert main(["sensitivity", "dedoppler/search", "-o", "other/alg=--x 1", "--out", str(tmp_path)]) == 2
    assert "--option" in capsys.readouterr().err


def test_negative_drift_spec_is_a_value():
    from bl_reservoir.cli import build_parser

    argv = ["sensitivity", "dedoppler/search", "--drift", "-4:4:9", "--snr", "5:50:10"]
    args = build_parser(argv).parse_args(argv)
    assert args.drift == "-4:4:9" and args.algorithms == ["dedoppler/search"]
