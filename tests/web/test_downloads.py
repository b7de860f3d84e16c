"""Downloads of one result: its hits as CSV (filtered, ordered), the turboSETI `.dat`, the stamps."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
from _webapp import OBS, OTHER, make_client, write_fake_result

from bl_reservoir.results import read_results
from bl_reservoir.web.downloads import attachment

DD = f"/api/observations/{OBS}/dedoppler/search"
ED = f"/api/observations/{OBS}/energy_detection/preprocess_fine"


def test_hits_csv_is_the_filtered_table_in_its_order(client, runner_bucket):
    expected = read_results(runner_bucket[0] / OBS / "dedoppler" / "search", stamps=False).hits
    whole = client.get(f"{DD}/hits.csv")
    assert whole.status_code == 200 and whole.headers["content-type"].startswith("text/csv")
    assert whole.headers["content-disposition"].startswith(f'attachment; filename="{OBS}_dedoppler_search_hits.csv"')
    table = pd.read_csv(io.StringIO(whole.text))
    assert table["i"].tolist() == list(range(len(expected)))
    assert np.allclose(table["freqs"], expected["freqs"]) and np.allclose(table["snr"], expected["snr"])
    # the same filters and order as the hits table; blank ones are not given
    drifting = pd.read_csv(io.StringIO(client.get(f"{DD}/hits.csv?drift_min=0&fmax=&sort=snr").text))
    assert drifting["index"].tolist() == [1000] and drifting["i"].tolist() == [0]
    by_freq = pd.read_csv(io.StringIO(client.get(f"{DD}/hits.csv?sort=freqs&descending=true").text))
    assert by_freq["freqs"].is_monotonic_decreasing and len(by_freq) == len(expected)
    assert client.get(f"{DD}/hits.csv?fmin=nope").status_code == 422


def test_dat_and_stamps_are_the_stored_files(client, runner_bucket):
    folder = runner_bucket[0] / OBS / "dedoppler" / "search"
    dat = client.get(f"{DD}/hits.dat")
    assert dat.status_code == 200 and dat.content == (folder / f"{OBS}.dat").read_bytes()
    assert f'filename="{OBS}.dat"' in dat.headers["content-disposition"]
    stamps = client.get(f"{DD}/filtered.npy")
    assert stamps.status_code == 200 and int(stamps.headers["content-length"]) == len(stamps.content)
    assert np.array_equal(np.load(io.BytesIO(stamps.content), allow_pickle=False), np.load(folder / "filtered.npy"))
    # energy detection writes no .dat; the observation page links what each result has
    assert client.get(f"{ED}/hits.dat").status_code == 404
    links = {r["algorithm"]: r["downloads"] for r in client.get(f"/api/observations/{OBS}").json()["results"]}
    assert links["dedoppler/search"] == {"csv": f"{DD}/hits.csv", "stamps": f"{DD}/filtered.npy", "dat": f"{DD}/hits.dat"}
    assert links["energy_detection/preprocess_fine"]["dat"] is None
    html = client.get(f"/observations/{OBS}").text
    for link in (f"{DD}/hits.csv", f"{DD}/filtered.npy", f"{DD}/hits.dat", f"{ED}/hits.csv"):
        assert f'href="{link}"' in html, link
    assert client.get(f"/api/observations/{OTHER}/dedoppler/search/filtered.npy").status_code == 404


def test_text_cells_a_spreadsheet_would_run_are_defused(runner_bucket, tmp_path):
    bucket = tmp_path / "bucket"
    folder = write_fake_result(bucket, OTHER, 3)
    hits = pd.read_parquet(folder / "info_df.parquet")
    hits["note"] = ["=HYPERLINK(\"http://x\")", "-2+3", "plain"]
    hits.to_parquet(folder / "info_df.parquet")
    with make_client(bucket, tmp_path / "store.db") as c:
        c.app.state.indexer.join(60)
        table = pd.read_csv(io.StringIO(c.get(f"/api/observations/{OTHER}/energy_detection/preprocess_fine/hits.csv").text))
    assert table["note"].tolist() == ["'=HYPERLINK(\"http://x\")", "'-2+3", "plain"]
    assert (table["statistic"] > 0).all()   # numbers are written as they are


def test_attachment_names_any_file_name():
    assert attachment("a b<c>ü.csv") == {
        "Content-Disposition": "attachment; filename=\"a_b_c__.csv\"; filename*=UTF-8''a%20b%3Cc%3E%C3%BC.csv"}
