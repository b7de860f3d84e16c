"""Campaign logic without a cluster: inputs."""

from __future__ import annotations

import pytest

from bl_reservoir.errors import UsageError
from bl_reservoir.scale import campaigns


def test_expand_inputs_paths_globs_uris_and_lists(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in ("b.h5", "a.h5", "c.fil"):
        (tmp_path / name).write_bytes(b"x")
    listing = tmp_path / "list.txt"
    listing.write_text("# inputs\ngs://bucket/x.h5\n\n c.fil \n")
    found = campaigns.expand_inputs(["*.h5", "s3://b/y.fil", f"@{listing}", "c.fil"])
    assert found == [str(tmp_path / "a.h5"), str(tmp_path / "b.h5"), "s3://b/y.fil", "gs://bucket/x.h5",
                     str(tmp_path / "c.fil"), str(tmp_path / "c.fil")]
    with pytest.raises(UsageError, match="nothing.h5: no such file"):
        campaigns.expand_inputs(["nothing.h5"])
    with pytest.raises(UsageError, match=r"\*.dat: no file matches"):
        campaigns.expand_inputs(["*.dat"])
    with pytest.raises(UsageError, match="missing.txt: cannot read the input list"):
        campaigns.expand_inputs(["@missing.txt"])


def test_submit_checks_before_creating_anything(tmp_path, monkeypatch):
    monkeypatch.setenv("BL_RESERVOIR_DB", f"sqlite:///{tmp_path / 's.db'}")
    (tmp_path / "x.h5").write_bytes(b"x")
    with pytest.raises(UsageError, match="unknown algorithm 'nope/nope'"):
        campaigns.submit("nope/nope", [str(tmp_path / "x.h5")])
    with pytest.raises(UsageError, match="--max-attempts must be at least 1"):
        campaigns.submit("energy_detection/preprocess_fine", [str(tmp_path / "x.h5")], max_attempts=0)
    with pytest.raises(UsageError, match="--detach needs a running scheduler"):
        campaigns.submit("energy_detection/preprocess_fine", [str(tmp_path / "x.h5")], detach=True)


def test_a_job_goes_on_when_the_cancel_signal_is_out_of_reach(monkeypatch):
    # no scheduler here: a stand-in worker and an Event whose scheduler refuses the connection
    import distributed

    from bl_reservoir.scale import tasks

    class Unreachable:
        def is_set(self) -> bool:
            raise OSError("connection refused")

    class Set:
        def is_set(self) -> bool:
            return True

    monkeypatch.setattr(distributed, "get_worker", lambda: object())
    monkeypatch.setattr(tasks, "cancel_event", lambda campaign, client=None: Unreachable())
    assert tasks._cancelled_check("c1")() is False
    monkeypatch.setattr(tasks, "cancel_event", lambda campaign, client=None: Set())
    assert tasks._cancelled_check("c1")() is True
    monkeypatch.undo()
    assert tasks._cancelled_check("c1") is None  # outside a Dask worker there is nothing to check


def test_a_symlinked_input_keeps_its_own_name(tmp_path, monkeypatch):
    """`obs_1.h5 -> ho.h5` is submitted as obs_1.h5 (its result is <bucket>/obs_1/...), not as ho.h5."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ho.h5").write_bytes(b"x")
    (tmp_path / "obs_1.h5").symlink_to("ho.h5")
    (tmp_path / "data").symlink_to(tmp_path)
    assert campaigns.expand_inputs(["obs_1.h5", "data/obs_*.h5"]) == [str(tmp_path / "obs_1.h5"),
                                                                       str(tmp_path / "data" / "obs_1.h5")]
