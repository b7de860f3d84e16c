"""The ahead-of-time kernels: numba's JIT results, a safe fallback, one build per machine.

Building needs a C and C++ compiler and the Python headers; .ci/run installs them, so CI runs
every test here.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import threading
import time

import numpy as np
import pandas as pd
import pytest

from bl_reservoir.dedoppler import _aot
from bl_reservoir.dedoppler._noise import _central_std
from bl_reservoir.dedoppler._taylor import (
    _search_chunks,
    padded_width,
    reverse_channels,
)
from bl_reservoir.dedoppler.driver import DriftGrid, SearchParameters, search_block
from bl_reservoir.results import read_results
from bl_reservoir.synth import Signal, make_observation

HEADER = {"fch1": 1500.0, "foff": -2.7939677238464355e-06, "tsamp": 18.253611008}
# CI (BL_RESERVOIR_REQUIRE_SERVICES) installs a compiler, so there these tests fail rather than skip without one
has_compiler = pytest.mark.skipif(
    any(shutil.which((sysconfig.get_config_var(v) or d).split()[0]) is None for v, d in (("CC", "cc"), ("CXX", "c++")))
    and not os.environ.get("BL_RESERVOIR_REQUIRE_SERVICES"),
    reason="no C and C++ compiler here: the JIT fallback is what runs")


def _block(seed: int = 3) -> np.ndarray:
    """16 spectra of 32,768 channels with four drifting lines of both signs (one past a drift block)."""
    rng = np.random.default_rng(seed)
    block = rng.normal(100.0, 5.0, (16, 32768)).astype(np.float32)
    rows = np.arange(16)
    for start, slope, power in ((3000, 0.0, 12.0), (9000, 1.4, 12.0), (20000, -3.2, 10.0), (30000, 25.0, 15.0)):
        block[rows, start + np.rint(slope * rows).astype(int)] += power
    return block


def _search(block: np.ndarray, exhaustive: bool, desmear: bool = False) -> tuple[pd.DataFrame, np.ndarray]:
    params = SearchParameters(max_drift=4.0, snr=10.0, exhaustive=exhaustive, threads=1, desmear=desmear)
    grid = DriftGrid.for_header(HEADER, 16, params)
    return search_block(block.copy(), HEADER, grid, params, 0, 0)


@has_compiler
@pytest.mark.parametrize(("exhaustive", "desmear"), [(False, False), (True, False), (False, True)])
def test_compiled_kernels_give_exactly_the_jit_results(monkeypatch, exhaustive, desmear):
    module = _aot.compiled_module()
    assert module is not None
    assert set(_aot._KERNELS) <= set(dir(module)) and len(_aot._KERNELS) == 11
    compiled_hits, compiled_stamps = _search(_block(), exhaustive, desmear)
    assert sorted(compiled_hits["channel_in_coarse"]) == [3000, 9000, 20000, 30000]
    monkeypatch.setattr(_aot, "_load", lambda: None)  # every kernel through its numba dispatcher
    assert _aot.compiled_module() is None
    jit_hits, jit_stamps = _search(_block(), exhaustive, desmear)
    pd.testing.assert_frame_equal(compiled_hits, jit_hits)
    np.testing.assert_array_equal(compiled_stamps, jit_stamps)


def test_arguments_that_do_not_fit_the_compiled_signature_run_the_jit_kernel():
    # the compiled wrappers do not check types: float64 data or a strided view there would read garbage
    rng = np.random.default_rng(0)
    data = rng.normal(size=(4, 9))  # float64; the compiled kernel takes float32
    expected = data[:, ::-1].copy()
    reverse_channels(data)
    np.testing.assert_array_equal(data, expected)
    x = rng.normal(size=20001).astype(np.float32)[::2]  # not C-contiguous; the signature says [::1]
    inside = x[(x > -1.0) & (x < 1.0)].astype(np.float64)
    assert _central_std(x, -1.0, 1.0) == pytest.approx(inside.std(), rel=1e-6)
    assert _central_std(np.ascontiguousarray(x), -1.0, 1.0) == pytest.approx(inside.std(), rel=1e-6)
    with pytest.raises(TypeError):
        _central_std(x, -1.0)  # a missing argument is refused, not passed on


@has_compiler
def test_compiled_kernels_release_the_gil():
    # the read-ahead thread and --threads rely on it; pycc's wrappers hold the GIL unless told not to
    assert _aot.compiled_module() is not None
    width, max_bins, chunk = 1 << 18, 600, 2048
    padded = np.ones((16, padded_width(width, 16, max_bins, chunk)), dtype=np.float32)
    best, block = np.empty(width, dtype=np.float32), np.empty(width, dtype=np.int32)
    started = []

    def run():
        started.append(time.perf_counter())
        _search_chunks(padded, width, max_bins, 0, best, block, chunk, 0, width // chunk)

    worker = threading.Thread(target=run)
    worker.start()
    while not started:
        pass
    ticks = [started[0]]
    while worker.is_alive():  # with the GIL held by the kernel, the first tick would wait for its end
        ticks.append(time.perf_counter())
    duration = ticks[-1] - ticks[0]
    assert duration > 0.05  # long enough for a held GIL to show as one gap
    assert np.diff(ticks).max() < 0.5 * duration  # this thread kept running meanwhile
    assert best[0] == 16.0 and best[-1] == 16.0


def _observation(tmp_path):
    signals = {0: [Signal(1000, 1.0, 40.0, 4.0), Signal(3000, -2.0, 35.0, 4.0)]}
    return make_observation(tmp_path / "obs.h5", n_coarse_channels=1, coarse_channel_width=4096, signals=signals,
                            seed=2)


def _run(path, out, env):
    return subprocess.Popen([sys.executable, "-m", "bl_reservoir.dedoppler.search", str(path), str(out)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@has_compiler
@pytest.mark.slow
def test_processes_starting_together_on_a_new_machine_build_the_module_once(tmp_path):
    path, truth = _observation(tmp_path)
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "cache")}
    procs = [_run(path, tmp_path / f"out{n}", env) for n in range(2)]
    errs = [p.communicate()[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errs
    assert sum(e.count("dedoppler kernels ahead of time into") for e in errs) == 1  # the other waited for it
    built = list((tmp_path / "cache" / "bl_reservoir").glob("bl_dedoppler_kernels_*" + sysconfig.get_config_var("EXT_SUFFIX")))
    assert len(built) == 1
    for n in range(2):
        hits = read_results(tmp_path / f"out{n}").hits
        assert sorted(hits["index"]) == sorted(truth["index"])
    # a later process imports it, and never imports numba (~0.5 s) nor loads its registries (0.3-0.4 s)
    code = (f"import sys\nfrom bl_reservoir.dedoppler.search import main\n"
            f"assert main([{str(path)!r}, {str(tmp_path / 'out2')!r}, '--quiet']) == 0\n"
            f"print('numba' in sys.modules, 'llvmlite' in sys.modules)\n")
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False)
    assert proc.returncode == 0 and proc.stdout.split() == ["False", "False"], proc.stderr
    assert sorted(read_results(tmp_path / "out2").hits["index"]) == sorted(truth["index"])


@pytest.mark.slow
def test_without_a_compiler_the_search_says_so_once_and_runs_on_the_jit(tmp_path):
    path, truth = _observation(tmp_path)
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "cache"), "CC": "false", "CXX": "false"}
    first = _run(path, tmp_path / "out1", env)
    _, err = first.communicate()
    assert first.returncode == 0, err
    warnings = [line for line in err.splitlines() if line.startswith("WARNING")]
    assert len(warnings) == 1 and "not compiled ahead of time" in warnings[0] and ".failed" in warnings[0]
    assert sorted(read_results(tmp_path / "out1").hits["index"]) == sorted(truth["index"])
    (marker,) = (tmp_path / "cache" / "bl_reservoir").glob("*.failed")
    second = _run(path, tmp_path / "out2", env)  # the marker stops it trying again
    _, err = second.communicate()
    assert second.returncode == 0 and "WARNING" not in err and "ahead of time" not in err, err
    assert sorted(read_results(tmp_path / "out2").hits["index"]) == sorted(truth["index"])
    # a damaged module file: one warning naming it, and the JIT runs
    marker.with_suffix(".so").write_bytes(b"not a library")  # the module path: marker and module differ by suffix
    marker.unlink()
    third = _run(path, tmp_path / "out3", env)
    _, err = third.communicate()
    warnings = [line for line in err.splitlines() if line.startswith("WARNING")]
    assert third.returncode == 0 and len(warnings) == 1 and "cannot be imported" in warnings[0], err
    assert sorted(read_results(tmp_path / "out3").hits["index"]) == sorted(truth["index"])


@pytest.mark.slow
def test_when_numba_drops_pycc_the_search_says_so_once_and_runs_on_the_jit(tmp_path):
    path, truth = _observation(tmp_path)
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "cache")}
    code = ("import sys\nsys.modules['numba.pycc'] = None  # as if numba had removed it\n"
            "from bl_reservoir.dedoppler.search import main\n"
            f"sys.exit(main([{str(path)!r}, {str(tmp_path / 'out')!r}]))\n")
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False)
    warnings = [line for line in proc.stderr.splitlines() if line.startswith("WARNING")]
    assert proc.returncode == 0 and len(warnings) == 1, proc.stderr
    assert "not compiled ahead of time (ModuleNotFoundError" in warnings[0] and "numba.pycc" in warnings[0]
    assert sorted(read_results(tmp_path / "out").hits["index"]) == sorted(truth["index"])
    assert sorted(p.suffix for p in (tmp_path / "cache" / "bl_reservoir").glob("bl_dedoppler_kernels_*.*")) == [".failed", ".lock"]


def test_kernels_setting_jit_compiles_nothing_ahead_of_time(tmp_path):
    path, truth = _observation(tmp_path)
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "cache"), "BL_RESERVOIR_KERNELS": "jit"}
    proc = _run(path, tmp_path / "out", env)
    _, err = proc.communicate()
    assert proc.returncode == 0 and "WARNING" not in err and "ahead of time" not in err, err
    assert sorted(read_results(tmp_path / "out").hits["index"]) == sorted(truth["index"])
    assert not list((tmp_path / "cache").rglob("bl_dedoppler_kernels_*"))


def test_with_numba_disable_jit_nothing_is_compiled_and_the_kernels_run_as_python():
    code = ("import numpy as np\nfrom bl_reservoir.dedoppler import _aot\n"
            "from bl_reservoir.dedoppler._taylor import reverse_channels, taylor_tree\n"
            "d = np.arange(8, dtype=np.float32).reshape(2, 4).copy()\nreverse_channels(d)\n"
            "print(_aot.compiled_module(), d[0].tolist(), taylor_tree(np.ones((4, 6), np.float32))[:, 0].tolist())\n")
    proc = subprocess.run([sys.executable, "-c", code], env={**os.environ, "NUMBA_DISABLE_JIT": "1"},
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["None", "[3.0,", "2.0,", "1.0,", "0.0]", "[4.0,", "4.0,", "4.0,", "4.0]"]


def test_with_no_writable_cache_folder_the_search_says_so_and_runs_on_the_jit(monkeypatch, caplog):
    def nowhere():
        raise OSError("no writable cache folder for the compiled kernels")

    monkeypatch.setattr(_aot, "_cache_folder", nowhere)
    _aot._load.cache_clear()
    try:
        with caplog.at_level("WARNING", logger="bl_reservoir.dedoppler._aot"):
            assert _aot.compiled_module() is None
        assert "not compiled ahead of time (no writable cache folder" in caplog.text
        hits, _ = _search(_block(), exhaustive=False)
        assert sorted(hits["channel_in_coarse"]) == [3000, 9000, 20000, 30000]
    finally:
        _aot._load.cache_clear()  # the next caller finds the real module again
