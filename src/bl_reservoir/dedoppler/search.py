"""`python -m bl_reservoir.dedoppler.search IN [OUT] [--max-drift 4] [--min-drift 0] [--snr 10] ...` (contract C1).

Writes the standard results folder (C2) plus `<input stem>.dat` in turboSETI's format.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import math
import os
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from bl_reservoir import __version__
from bl_reservoir.errors import UsageError
from bl_reservoir.script import default_out_dir, run_script

log = logging.getLogger(__name__)

ALGORITHM = {"package": "dedoppler", "name": "search", "version": __version__}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bl_reservoir.dedoppler.search",
                                     description="Taylor-tree de-Doppler drift search of one observation.")
    parser.add_argument("input", help=".fil or .h5 observation (path or URI)")
    parser.add_argument("out_dir", nargs="?", help="results folder (default: the input path without extension)")
    parser.add_argument("--max-drift", type=float, default=4.0, help="largest |drift rate| searched, Hz/s (default 4)")
    parser.add_argument("--min-drift", type=float, default=0.0, help="smallest |drift rate| reported, Hz/s (default 0)")
    parser.add_argument("--snr", type=float, default=10.0, help="SNR threshold of a hit (default 10)")
    parser.add_argument("--coarse-channel-width", type=int, default=None,
                        help="fine channels per coarse channel (default: from the header)")
    parser.add_argument("--exhaustive", action="store_true",
                        help="search every channel at full resolution instead of coarse-to-fine (slower, same hits; "
                             "always so below --snr 10)")
    parser.add_argument("--desmear", action="store_true",
                        help="drifts over one channel per integration sum every channel the signal crosses in it "
                             "(Doppler-smeared signals; several times slower)")
    parser.add_argument("--threads", type=int, default=0,
                        help="CPU threads: threads for the tree, and the next coarse channel read in the "
                             "background when > 1 (default 0: NUMBA_NUM_THREADS, else all cores; a BL@Scale job "
                             "gets 1)")
    parser.add_argument("--gpu", action="store_true",
                        help="run the coarse tree search on a CUDA GPU (needs cupy: pip install 'bl-reservoir[gpu]')")
    parser.add_argument("--quiet", action="store_true", help="log warnings only")
    return parser


def _check(args: argparse.Namespace) -> None:
    if args.max_drift <= 0:
        raise UsageError(f"{args.input}: --max-drift must be > 0 Hz/s, got {args.max_drift}")
    if not 0 <= args.min_drift <= args.max_drift:
        raise UsageError(f"{args.input}: --min-drift must be in 0..max-drift, got {args.min_drift}")
    if args.threads < 0:
        raise UsageError(f"{args.input}: --threads must be >= 0, got {args.threads}")
    if args.snr <= 0:
        raise UsageError(f"{args.input}: --snr must be > 0, got {args.snr}")
    if args.gpu and args.desmear:
        raise UsageError(f"{args.input}: --desmear runs on the CPU only; drop --gpu or --desmear")
    if args.gpu:
        from bl_reservoir.dedoppler._gpu import require_cupy

        try:
            require_cupy()
        except UsageError as exc:
            raise UsageError(f"{args.input}: {exc}; run without --gpu for the CPU path") from None


def run(args: argparse.Namespace) -> Path:
    """Search `args.input` and write the results folder; return its path."""
    from bl_reservoir.dedoppler.datfile import write_dat
    from bl_reservoir.dedoppler.driver import SearchParameters, search_observation
    from bl_reservoir.io import open_observation
    from bl_reservoir.results import build_manifest, utcnow, write_results

    _check(args)
    started, t0 = utcnow(), time.perf_counter()
    params = SearchParameters(max_drift=args.max_drift, min_drift=args.min_drift, snr=args.snr,
                              exhaustive=args.exhaustive, threads=args.threads, gpu=args.gpu, desmear=args.desmear)
    with open_observation(args.input, coarse_channel_width=args.coarse_channel_width) as obs:
        hits, stamps, grid = search_observation(obs, params)
        header, name, n_time, coarse_width = dict(obs.header), obs.name, obs.n_time, obs.coarse_channel_width
        size = os.path.getsize(obs.path)
    out_dir = Path(args.out_dir) if args.out_dir else default_out_dir(args.input)
    out_dir.mkdir(parents=True, exist_ok=True)
    # turboSETI's window: +-2 x the drift bins it takes to reach --max-drift, rounded up
    write_dat(out_dir / f"{name}.dat", header, hits, n_time=n_time, max_drift=args.max_drift,
              window_channels=2 * math.ceil(args.max_drift / abs(grid.resolution) - 1e-9),
              coarse_channel_width=coarse_width)
    parameters = {**params.as_dict(), "coarse_channel_width": args.coarse_channel_width,
                  "drift_resolution_hz_s": abs(grid.resolution), "drift_bins": grid.max_bins}
    manifest = build_manifest(algorithm=ALGORITHM, parameters=parameters, input_uri=str(args.input),
                              input_size=size, started_at=started, finished_at=utcnow(),
                              wall_seconds=round(time.perf_counter() - t0, 3))
    write_results(out_dir, header, hits, stamps, manifest)
    log.info("%s: %d hits -> %s", args.input, len(hits), out_dir)
    return out_dir


@contextlib.contextmanager
def _numba_blas_probe_skipped() -> Iterator[None]:
    """While the script runs, make importing scipy.linalg fail fast, if neither it nor numba's array
    registries are loaded yet; restore it afterwards.

    numba's first kernel load probes for BLAS by importing all of scipy.linalg (0.3 s, a third of a
    one-coarse-channel search) though no kernel here calls BLAS, and nothing else in the search
    imports it. Told there is none, numba only notes that (`numba.np.arraymath._HAVE_BLAS`) and
    would take its plain-loop fallback for inner products. np.dot in numba still finds BLAS when
    first used afterwards, and scipy.linalg imports normally again (tested).
    """
    if "scipy.linalg" in sys.modules or "numba.np.arraymath" in sys.modules:
        yield
        return
    sys.modules["scipy.linalg"] = None  # type: ignore[assignment]
    try:
        yield
    finally:
        if sys.modules.get("scipy.linalg", ...) is None:
            del sys.modules["scipy.linalg"]


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    # not with --gpu: cupy's own imports are not ours to vouch for
    with contextlib.nullcontext() if args.gpu else _numba_blas_probe_skipped():
        return run_script("dedoppler/search", args.input, lambda: run(args))


if __name__ == "__main__":
    sys.exit(main())
