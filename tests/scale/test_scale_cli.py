"""The campaign commands' argument handling and one-line errors (no cluster needed)."""

from __future__ import annotations

import argparse

from bl_reservoir.cli import main
from bl_reservoir.cli.submit import configure, split_rest
from bl_reservoir.scale.jobs import JobStore


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    configure(parser)
    return parser.parse_args(argv)


def test_submit_splits_inputs_flags_and_algorithm_options():
    args = _parse("dedoppler/search", "a.h5", "b.h5", "--db", "sqlite:///x.db", "--max-attempts", "5",
                  "--", "--snr", "20", "--db", "ignored")
    inputs, options = split_rest(args)
    assert inputs == ["a.h5", "b.h5"] and options == ["--snr", "20", "--db", "ignored"]
    assert args.db == "sqlite:///x.db" and args.max_attempts == 5 and args.detach is False
    args = _parse("--bucket", "gs://b", "dedoppler/search", "@list.txt")
    assert split_rest(args) == (["@list.txt"], []) and args.bucket == "gs://b"


def test_status_cancel_and_errors(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 's.db'}"
    assert main(["status", "--db", url]) == 0
    assert "no campaigns" in capsys.readouterr().out
    store = JobStore(url)
    cid = store.create_campaign("dedoppler/search", ["/d/a.h5", "/d/b.h5"], bucket="/b")
    assert main(["status", "--db", url]) == 0 and cid in capsys.readouterr().out
    assert main(["status", cid, "--db", url]) == 0
    assert "/d/b.h5" in capsys.readouterr().out
    assert main(["cancel", cid, "--db", url]) == 0
    assert f"campaign {cid}: 2 jobs cancelled" in capsys.readouterr().out
    assert store.campaign_counts(cid)["cancelled"] == 2
    assert main(["status", "nope", "--db", url]) == 2
    assert capsys.readouterr().err.strip() == f"bl-reservoir: error: campaign nope: no such campaign in {url}"
    assert main(["submit", "dedoppler/search", "--db", url]) == 2
    assert "at least one INPUT" in capsys.readouterr().err
    assert main(["resume", cid, "--db", url]) == 0   # nothing unfinished: nothing to run, no cluster started
