"""The standard results folder (C2): round trip, refusals, and completing original-format folders."""

from __future__ import annotations

import json
import os
import pickle

import numpy as np
import pandas as pd
import pytest

from bl_reservoir.errors import InvalidResults
from bl_reservoir.results import (
    FILES,
    build_manifest,
    complete_results,
    read_results,
    write_results,
)

HEADER = {"fch1": 1501.0, "foff": -2.7939677238464355e-06, "nchans": 3 * 4096, "nfpc": 4096, "nifs": 1,
          "tsamp": 18.253611008, "tstart": 60000.0, "nbits": 32, "source_name": "HIP65057"}


def _hits(n: int = 3) -> pd.DataFrame:
    index = np.arange(n, dtype=np.int64) * 5000 + 128
    return pd.DataFrame({"index": index, "statistic": np.linspace(3000.0, 2100.0, n),
                         "pvalue": np.zeros(n), "freqs": HEADER["fch1"] + HEADER["foff"] * index,
                         "coarse_channel": index // 4096})


def _stamps(n: int = 3, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, 16, 256)).astype(np.float32)


def _manifest() -> dict:
    return build_manifest(algorithm={"package": "energy_detection", "name": "preprocess_fine", "version": "0.1.0"},
                          parameters={"threshold": 2048.0}, input_uri="/data/x.h5", input_size=123)


def _write(tmp_path, n: int = 3, **kw):
    return write_results(tmp_path / "res", {**HEADER, "nchans": np.int64(HEADER["nchans"])}, _hits(n),
                         _stamps(n), _manifest(), **kw)


def test_round_trip_returns_equal_frames_and_arrays(tmp_path):
    out = _write(tmp_path)
    assert sorted(p.name for p in out.iterdir()) == sorted(FILES)
    res = read_results(out)
    pd.testing.assert_frame_equal(res.hits, _hits())
    np.testing.assert_array_equal(res.stamps, _stamps())
    assert res.stamps.dtype == np.float32
    assert res.header == HEADER
    assert res.manifest["n_hits"] == 3 and res.manifest["schema"] == 1
    assert res.manifest["algorithm"] == {"package": "energy_detection", "name": "preprocess_fine", "version": "0.1.0"}
    assert res.manifest["input"] == {"uri": "/data/x.h5", "size_bytes": 123}
    # the pickles hold the same content for algorithms written against the original reservoir
    pd.testing.assert_frame_equal(pd.read_pickle(out / "info_df.pkl"), _hits())
    with open(out / "header.pkl", "rb") as f:
        assert pickle.load(f)["nchans"] == HEADER["nchans"]
    # the same folder read through an fsspec URI
    pd.testing.assert_frame_equal(read_results(f"file://{out}").hits, _hits())


def test_empty_folder_is_valid(tmp_path):
    out = write_results(tmp_path / "empty", HEADER, _hits(0), np.zeros((0, 16, 256), np.float32), _manifest())
    res = read_results(out)
    assert len(res.hits) == 0 and res.stamps.shape == (0, 16, 256)
    assert list(res.hits.columns) == ["index", "statistic", "pvalue", "freqs", "coarse_channel"]


def test_extra_files_are_written_before_the_manifest(tmp_path):
    out = _write(tmp_path, extra_files={"best_hits.npy": _stamps(1), "best_hits.json": {"rows": [np.int64(0)]}})
    np.testing.assert_array_equal(np.load(out / "best_hits.npy", allow_pickle=False), _stamps(1))
    assert json.loads((out / "best_hits.json").read_text()) == {"rows": [0]}
    assert (out / "manifest.json").stat().st_mtime_ns >= (out / "best_hits.npy").stat().st_mtime_ns
    with pytest.raises(ValueError, match="plain file name"):
        _write(tmp_path, extra_files={"../escape.npy": _stamps(1)})
    with pytest.raises(ValueError, match="new plain file name"):
        _write(tmp_path, extra_files={"manifest.json": {}})


def test_write_refuses_stamps_that_do_not_match_hits(tmp_path):
    with pytest.raises(InvalidResults, match="holds 2 stamps but info_df has 3 hits"):
        write_results(tmp_path / "bad", HEADER, _hits(3), _stamps(2), _manifest())
    with pytest.raises(InvalidResults, match="lacks column.*coarse_channel"):
        write_results(tmp_path / "bad", HEADER, _hits(3).drop(columns="coarse_channel"), _stamps(3), _manifest())


def test_read_refuses_mismatched_stamps(tmp_path):
    out = _write(tmp_path)
    np.save(out / "filtered.npy", _stamps(2))
    with pytest.raises(InvalidResults, match="holds 2 stamps but info_df has 3 hits"):
        read_results(out)
    np.save(out / "filtered.npy", np.zeros((3, 256), np.float32))
    with pytest.raises(InvalidResults, match=r"shape \(3, 256\)"):
        read_results(out)


def test_read_refuses_a_missing_manifest(tmp_path):
    out = _write(tmp_path)
    (out / "manifest.json").unlink()
    with pytest.raises(InvalidResults, match="no manifest.json"):
        read_results(out)


def test_read_refuses_pickles_alone(tmp_path):
    out = _write(tmp_path)
    for name in ("manifest.json", "header.json", "info_df.parquet"):
        (out / name).unlink()
    with pytest.raises(InvalidResults, match="only the original pickled files"):
        read_results(out)


@pytest.mark.parametrize("change, message", [
    (lambda out: (out / "manifest.json").write_text(json.dumps({"schema": 99})), "unknown manifest schema 99"),
    (lambda out: (out / "manifest.json").write_text("[1, 2]"), "manifest.json holds a list"),
    (lambda out: (out / "manifest.json").write_text("{not json"), "malformed results"),
    (lambda out: (out / "info_df.parquet").write_bytes(b"not parquet"), "malformed results"),
    (lambda out: (out / "header.json").unlink(), "missing header.json"),
    (lambda out: np.save(out / "filtered.npy", np.array([{"a": 1}], dtype=object)), "malformed results"),
    (lambda out: (out / "manifest.json").write_text(json.dumps({"schema": 1, "n_hits": 7})),
     "manifest says 7 hits but info_df has 3"),
])
def test_read_refuses_malformed_folders(tmp_path, change, message):
    out = _write(tmp_path)
    change(out)
    with pytest.raises(InvalidResults, match=message):
        read_results(out)


def test_read_refuses_a_missing_folder(tmp_path):
    with pytest.raises(InvalidResults, match="no such results folder"):
        read_results(tmp_path / "nothing")


def _original_folder(tmp_path, hits: pd.DataFrame, stamps: np.ndarray | None, header=None):
    """What the original preprocess_fine.py left: three files, pickled header with numpy values."""
    out = tmp_path / "orig"
    out.mkdir()
    with open(out / "header.pkl", "wb") as f:
        pickle.dump(header if header is not None else {**HEADER, "fch1": np.float64(HEADER["fch1"]),
                                                      "source_name": b"HIP65057"}, f)
    hits.to_pickle(out / "info_df.pkl")
    if stamps is not None:
        np.save(out / "filtered.npy", stamps)
    return out


def test_complete_results_on_the_three_original_files(tmp_path):
    original = _hits().drop(columns="coarse_channel")  # the original info_df had no coarse_channel
    stamps64 = _stamps().astype(np.float64)  # and float64 stamps
    out = _original_folder(tmp_path, original, stamps64)
    complete_results(out, _manifest())
    assert sorted(p.name for p in out.iterdir()) == sorted(FILES)
    res = read_results(out)
    assert res.hits["coarse_channel"].tolist() == [0, 1, 2]  # 128, 5128, 10128 // 4096
    np.testing.assert_allclose(res.hits["freqs"], _hits()["freqs"])
    assert res.stamps.dtype == np.float32
    np.testing.assert_array_equal(res.stamps, _stamps())
    assert res.header["source_name"] == "HIP65057" and res.header["fch1"] == 1501.0
    assert res.manifest["n_hits"] == 3 and res.manifest["algorithm"]["name"] == "preprocess_fine"


def test_complete_results_with_no_hits_and_no_stamps(tmp_path):
    out = _original_folder(tmp_path, _hits(0), None)
    complete_results(out)
    res = read_results(out)
    assert len(res.hits) == 0 and res.stamps.shape[0] == 0


@pytest.mark.parametrize("make, message", [
    (lambda tmp: _original_folder(tmp, _hits(), _stamps(2)), "holds 2 stamps but info_df has 3 hits"),
    (lambda tmp: _original_folder(tmp, _hits(), None), "missing filtered.npy for 3 hits"),
    (lambda tmp: _original_folder(tmp, _hits(), _stamps(), header=["not", "a", "dict"]), "header.pkl holds a list"),
    (lambda tmp: _original_folder(tmp, _hits().drop(columns="index"), _stamps()), "lacks column.*index"),
    (lambda tmp: _original_folder(tmp, _hits().drop(columns="coarse_channel"), _stamps(), header={"x": 1}),
     "header cannot give them"),
])
def test_complete_results_refuses_malformed_folders(tmp_path, make, message):
    out = make(tmp_path)
    with pytest.raises(InvalidResults, match=message):
        complete_results(out)
    assert not (out / "manifest.json").exists()


def test_complete_results_refuses_unreadable_and_missing_files(tmp_path):
    out = _original_folder(tmp_path, _hits(), _stamps())
    (out / "info_df.pkl").write_bytes(b"garbage")
    with pytest.raises(InvalidResults, match="unreadable results file"):
        complete_results(out)
    (out / "info_df.pkl").unlink()
    with pytest.raises(InvalidResults, match="missing info_df.pkl"):
        complete_results(out)
    with pytest.raises(InvalidResults, match="does not exist"):
        complete_results(tmp_path / "nothing")
    np.save(out / "filtered.npy", np.array(["a", "b"]))
    _hits(2).to_pickle(out / "info_df.pkl")
    with pytest.raises(InvalidResults, match="expected numbers"):
        complete_results(out)


def test_complete_results_keeps_an_index_set_as_the_frame_index(tmp_path):
    out = _original_folder(tmp_path, _hits().set_index("index"), _stamps())
    complete_results(out)
    assert read_results(out).hits["index"].tolist() == [128, 5128, 10128]


class _Payload:
    """Unpickles by running code: writes the PID of the process that loads it to `marker`, then gives `value`."""

    def __init__(self, marker, value_code: str):
        self.code = f"(open({str(marker)!r}, 'w').write(str(__import__('os').getpid())), {value_code})[1]"

    def __reduce__(self):
        return (eval, (self.code,))


def test_complete_results_never_unpickles_in_this_process(tmp_path):
    out = _original_folder(tmp_path, _hits(), _stamps())
    marker = tmp_path / "unpickled-by"
    frame = "__import__('pandas').DataFrame({'index': [128, 5128, 10128], 'snr': [1.0, 2.0, 3.0]})"
    (out / "info_df.pkl").write_bytes(pickle.dumps(_Payload(marker, frame)))
    complete_results(out, _manifest())
    assert marker.read_text() != str(os.getpid())  # it ran, in a subprocess
    assert read_results(out).hits["coarse_channel"].tolist() == [0, 1, 2]


def test_complete_results_takes_the_json_and_parquet_an_algorithm_wrote(tmp_path):
    out = _write(tmp_path)
    marker = tmp_path / "unpickled-by"
    (out / "info_df.pkl").write_bytes(pickle.dumps(_Payload(marker, "None")))  # never read: the copies are there
    (out / "manifest.json").unlink()
    complete_results(out, _manifest())
    assert not marker.exists()
    pd.testing.assert_frame_equal(read_results(out).hits, _hits())


def test_read_refuses_files_that_do_not_match_the_files_the_manifest_lists(tmp_path):
    out = _write(tmp_path)
    manifest = json.loads((out / "manifest.json").read_text())
    listed = {name: {"size_bytes": (out / name).stat().st_size, "md5": "0" * 32}
              for name in ("header.json", "info_df.parquet", "filtered.npy")}
    (out / "manifest.json").write_text(json.dumps({**manifest, "files": listed}))
    assert len(read_results(out).hits) == 3  # a local listing gives sizes, not MD5s
    (out / "filtered.npy").write_bytes((out / "filtered.npy").read_bytes()[:-4])
    with pytest.raises(InvalidResults, match=r"the files do not match manifest.json \(filtered.npy holds \d+ bytes, "
                                             r"not the \d+ listed\): the results are incomplete"):
        read_results(out)


def test_result_files_lists_plain_files_and_refuses_the_rest(tmp_path):
    from bl_reservoir.results import result_files

    out = _write(tmp_path)
    (out / "plots").mkdir()
    (out / "plots" / "a.png").write_bytes(b"png")
    assert result_files(out)["plots/a.png"] == 3 and result_files(out)["header.json"] > 0
    (out / "plots" / "b.png").symlink_to(out / "plots" / "a.png")
    with pytest.raises(InvalidResults, match=r"'plots/b.png' is a symbolic link \(to '.*a.png'\): refused"):
        result_files(out)
    (out / "plots" / "b.png").unlink()
    os.mkfifo(out / "fifo")
    with pytest.raises(InvalidResults, match=r"'fifo' is not a plain file"):
        result_files(out)


def test_to_jsonable_takes_astropy_values_as_blimpy_headers_hold_them():
    """blimpy's header holds astropy Angles and Quantities (ndarray subclasses): plain numbers in their
    units, not a crash on iterating a 0-d array; arrays of them become lists."""
    import astropy.units as u
    from astropy.coordinates import Angle

    from bl_reservoir.results import to_jsonable

    header = {"src_raj": Angle("17h45m40.04s"), "src_dej": Angle("-29d00m28.1s"), "foff": -2.79 * u.Hz,
              "many": Angle([1.0, 2.0], u.deg), "tstart": np.float64(58402.5)}
    out = to_jsonable(header)
    assert out["src_raj"] == pytest.approx(17.761122, abs=1e-6) and out["src_dej"] == pytest.approx(-29.007806,
                                                                                                    abs=1e-6)
    assert out["foff"] == pytest.approx(-2.79) and out["many"] == [1.0, 2.0] and out["tstart"] == 58402.5
    json.dumps(out)
