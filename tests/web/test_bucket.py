"""Reading results from a bucket for the web: safe names, one stamp at a time, never a pickle."""

from __future__ import annotations

import json
import pickle
import shutil

import numpy as np
import pytest
from _webapp import write_fake_result

from bl_reservoir.web.bucket import Bucket, NotInBucket, ResultRef, safe_name

REF = ResultRef("GBT_1_fine", "energy_detection", "preprocess_fine")


@pytest.mark.parametrize("name", ["GBT_58402_67632_HIP65057_fine", "a", "x.h5", "a-b+c", "dedoppler", "_x"])
def test_safe_names(name):
    assert safe_name(name)


@pytest.mark.parametrize("name", ["", ".", "..", "a..b", "/etc", "a/b", "a\\b", "a\x00b", ".hidden", "-x",
                                  "a b", "é", "x" * 201, "a%2Fb"])
def test_unsafe_names(name):
    assert not safe_name(name)


@pytest.fixture
def bucket(tmp_path):
    write_fake_result(tmp_path, REF.obs, 7, seed=4)
    return tmp_path, Bucket(str(tmp_path))


def test_reads_one_stamp_without_loading_the_file(bucket):
    root, reader = bucket
    stamps = np.load(root / REF.obs / REF.package / REF.name / "filtered.npy")
    for i in (0, 3, 6):
        assert np.array_equal(reader.stamp(REF, i), stamps[i])
    with pytest.raises(NotInBucket):
        reader.stamp(REF, 7)


def test_hits_header_and_manifest(bucket):
    _, reader = bucket
    manifest, version = reader.manifest(REF)
    assert manifest["n_hits"] == 7 and len(version) == 16
    assert reader.hits(REF)["index"].tolist() == reader.hits(REF, version)["index"].tolist()
    assert len(reader.hits(REF)) == 7 and reader.header(REF)["source_name"] == "HIP99999"
    assert reader.hits(REF) is reader.hits(REF)  # cached while the manifest is unchanged
    assert list(reader.scan()) == [REF] and reader.results_of(REF.obs) == [REF]


def test_a_new_upload_is_seen_at_once(bucket):
    root, reader = bucket
    first = reader.hits(REF)
    write_fake_result(root, REF.obs, 3, seed=5)
    assert len(reader.hits(REF)) == 3 and len(first) == 7


def test_never_unpickles(bucket, monkeypatch):
    root, reader = bucket
    folder = root / REF.obs / REF.package / REF.name
    (folder / "header.pkl").write_bytes(b"not a pickle at all")
    (folder / "info_df.pkl").write_bytes(b"not a pickle at all")

    def refuse(*args, **kwargs):
        raise AssertionError("the web tier unpickled something")

    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    assert len(reader.hits(REF)) == 7 and reader.stamp(REF, 1).shape == (16, 256)


def test_object_arrays_are_refused(bucket):
    root, reader = bucket
    folder = root / REF.obs / REF.package / REF.name
    np.save(folder / "filtered.npy", np.array([[[{"x": 1}]]], dtype=object), allow_pickle=True)
    with pytest.raises(NotInBucket):
        reader.stamp(REF, 0)


def test_missing_and_incomplete_results(bucket):
    root, reader = bucket
    with pytest.raises(NotInBucket):
        reader.manifest(ResultRef("nothing", "a", "b"))
    (root / REF.obs / REF.package / REF.name / "manifest.json").unlink()
    with pytest.raises(NotInBucket):
        reader.manifest(REF)
    assert list(reader.scan()) == []
    with pytest.raises(NotInBucket):
        reader.path("..", "x")


def test_sensitivity_reports(bucket):
    root, reader = bucket
    assert reader.reports() == []
    report = root / "sensitivity" / "dedoppler-quick"
    report.mkdir(parents=True)
    (report / "sensitivity.json").write_text(json.dumps({"snr_50": 12.5}))
    (report / "report.md").write_text("# Sensitivity\n")
    (report / "recovery.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    assert reader.reports() == ["dedoppler-quick"]
    files = reader.report_files("dedoppler-quick")
    assert files["summary"] == {"snr_50": 12.5} and files["markdown"] == "# Sensitivity\n"
    assert files["pictures"] == ["recovery.png"]
    assert reader.report_picture("dedoppler-quick", "recovery.png").startswith(b"\x89PNG")
    with pytest.raises(NotInBucket):
        reader.report_picture("dedoppler-quick", "report.md")
    assert list(reader.scan()) == [REF]  # reports are not results


def test_results_of_one_observation_in_order(bucket):
    root, reader = bucket
    shutil.copytree(root / REF.obs / REF.package / REF.name, root / REF.obs / "dedoppler" / "search")
    assert reader.results_of(REF.obs) == [ResultRef(REF.obs, "dedoppler", "search"), REF]
    assert [ref.algorithm for ref in reader.scan()] == ["dedoppler/search", "energy_detection/preprocess_fine"]
