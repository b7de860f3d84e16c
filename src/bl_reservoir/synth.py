"""Synthetic BL observations with injected drifting narrowband signals, and their truth table.

Signals are drawn by setigen (`constant_path`, `constant_t_profile`, `gaussian_f_profile`) into
one coarse channel at a time, so memory stays at one coarse channel whatever the file size.

SNR follows setigen's definition: the peak per-channel intensity of the time-integrated signal
over the standard deviation of the integrated noise (`Frame.get_intensity`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bl_reservoir.io import create_writer
from bl_reservoir.io.header import BL_FINE_FOFF_HZ as FOFF_HZ
from bl_reservoir.io.header import BL_FINE_N_TIME as N_TIME
from bl_reservoir.io.header import BL_FINE_TSAMP_S as TSAMP
from bl_reservoir.io.header import KNOWN_COARSE_WIDTHS

log = logging.getLogger(__name__)

#: Synthetic files are the BL fine-resolution product (`io.header.BL_FINE_*`), 2**20 channels per coarse one.
COARSE_WIDTH = KNOWN_COARSE_WIDTHS[0]
NOISE_MEAN = 1.0e6

TRUTH_COLUMNS = ["freq_start", "drift_rate", "snr", "width", "coarse_channel", "index", "doppler_smearing"]


@dataclass(frozen=True)
class Signal:
    """One injected signal: `index` is the fine channel at t = 0, `drift_rate` in Hz/s, `width` in Hz."""

    index: int
    drift_rate: float
    snr: float
    width: float = 4.0
    doppler_smearing: bool = False


def truth_path(path: str | os.PathLike) -> Path:
    """`x.h5` -> `x_truth.csv`."""
    path = Path(path)
    return path.with_name(f"{path.stem}_truth.csv")


def bl_header(n_chans: int, *, fch1: float = 1501.0, foff_hz: float = FOFF_HZ, tsamp: float = TSAMP,
              source_name: str = "SYNTHETIC", tstart: float = 60000.0,
              coarse_channel_width: int | None = None) -> dict[str, Any]:
    """A GBT-like header; `fch1` in MHz. Adds `nfpc` only for a non-BL coarse-channel width."""
    header: dict[str, Any] = {
        "telescope_id": 6, "machine_id": 10, "data_type": 1, "rawdatafile": "synthetic.raw",
        "source_name": source_name, "barycentric": 0, "pulsarcentric": 0,
        "az_start": 0.0, "za_start": 0.0, "src_raj": 17.761122, "src_dej": -29.007797,
        "tstart": float(tstart), "tsamp": float(tsamp), "nbits": 32,
        "fch1": float(fch1), "foff": foff_hz * 1e-6, "nchans": int(n_chans), "nifs": 1,
        "ibeam": 1, "nbeams": 1,
    }
    if coarse_channel_width and coarse_channel_width not in KNOWN_COARSE_WIDTHS:
        header["nfpc"] = int(coarse_channel_width)
    return header


def drift_span(drift_rate: float, n_time: int = N_TIME, tsamp: float = TSAMP, foff_hz: float = FOFF_HZ,
               doppler_smearing: bool = False) -> float:
    """Fine channels a signal of `drift_rate` Hz/s moves over the observation (signed, + = up in index)."""
    steps = n_time if doppler_smearing else n_time - 1
    return drift_rate * steps * tsamp / foff_hz


def random_signals(n: int, *, coarse_channel_width: int, n_time: int = N_TIME, tsamp: float = TSAMP,
                   foff_hz: float = FOFF_HZ, snr_range: tuple[float, float] = (10.0, 50.0),
                   drift_range: tuple[float, float] = (-4.0, 4.0), width_range: tuple[float, float] = (2.0, 20.0),
                   doppler_smearing: bool = False, seed: Any = None) -> list[Signal]:
    """`n` signals in one coarse channel, each path inside it, clear of the DC bin and of each other."""
    rng = np.random.default_rng(seed)
    width_ch = coarse_channel_width
    max_span = max(abs(drift_span(d, n_time, tsamp, foff_hz, True)) for d in drift_range)
    pad = int(max_span) + 32
    if 2 * pad + 64 >= width_ch // 2:
        raise ValueError(f"coarse channel of {width_ch} fine channels is too narrow for drifts up to "
                         f"{max(map(abs, drift_range))} Hz/s")
    signals: list[Signal] = []
    taken: list[tuple[float, float]] = []
    for _ in range(n * 200):
        if len(signals) == n:
            break
        drift = float(rng.uniform(*drift_range))
        start = int(rng.integers(pad, width_ch - pad))
        end = start + drift_span(drift, n_time, tsamp, foff_hz, doppler_smearing)
        lo, hi = min(start, end) - 16, max(start, end) + 16
        dc = width_ch // 2
        if lo <= dc + 8 and hi >= dc - 8:
            continue
        if any(lo <= b and hi >= a for a, b in taken):
            continue
        taken.append((lo - pad, hi + pad))
        signals.append(Signal(start, drift, float(rng.uniform(*snr_range)), float(rng.uniform(*width_range)),
                              doppler_smearing))
    if len(signals) < n:
        raise ValueError(f"cannot place {n} separate signals in {width_ch} fine channels")
    return signals


def synthesize_coarse_channel(header: Mapping[str, Any], coarse_channel: int, width: int, n_time: int,
                              signals: Iterable[Signal], seed: Any = None, noise: bool = True) -> np.ndarray:
    """float32 (n_time, width) block of coarse channel `coarse_channel` in file channel order."""
    import astropy.units as u
    import setigen as stg

    foff_hz = header["foff"] * 1e6
    fch1_hz = (header["fch1"] + header["foff"] * coarse_channel * width) * 1e6
    frame = stg.Frame(fchans=width, tchans=n_time, df=abs(foff_hz) * u.Hz, dt=header["tsamp"] * u.s,
                      fch1=fch1_hz * u.Hz, ascending=foff_hz > 0, seed=seed)
    if noise:
        frame.add_noise(x_mean=NOISE_MEAN, noise_type="chi2")
    else:
        frame.noise_std = NOISE_MEAN * np.sqrt(2 / frame.chi2_df)  # same scale, for signal levels
    for signal in signals:
        f_start = fch1_hz + foff_hz * signal.index
        span_hz = signal.drift_rate * header["tsamp"] * (n_time + 1)
        margin = 8 * signal.width + 4 * abs(foff_hz)
        lo, hi = sorted((f_start, f_start + span_hz))
        frame.add_signal(
            stg.constant_path(f_start=f_start * u.Hz, drift_rate=signal.drift_rate * u.Hz / u.s),
            stg.constant_t_profile(level=frame.get_intensity(snr=signal.snr)),
            stg.gaussian_f_profile(width=signal.width * u.Hz),
            stg.constant_bp_profile(level=1),
            bounding_f_range=((lo - margin) * u.Hz, (hi + margin) * u.Hz),
            doppler_smearing=signal.doppler_smearing,
            smearing_subsamples=max(2, int(np.ceil(abs(signal.drift_rate) / frame.unit_drift_rate))),
        )
    data = frame.data if foff_hz > 0 else frame.data[:, ::-1]
    return np.ascontiguousarray(data, dtype=np.float32)


def make_observation(path: str | os.PathLike, *, n_coarse_channels: int = 1,
                     coarse_channel_width: int = COARSE_WIDTH, n_time: int = N_TIME, n_signals: int = 1,
                     signals: Mapping[int, Sequence[Signal]] | None = None, seed: Any = None,
                     snr_range: tuple[float, float] = (10.0, 50.0),
                     drift_range: tuple[float, float] = (-4.0, 4.0),
                     width_range: tuple[float, float] = (2.0, 20.0), doppler_smearing: bool = False,
                     noise_only: bool = False, header: Mapping[str, Any] | None = None,
                     write_truth: bool = True) -> tuple[Path, pd.DataFrame]:
    """Write a BL-like `.fil` or `.h5` and its truth table; return `(path, truth)`.

    `n_signals` random signals are spread over the coarse channels (unless `noise_only`), or
    `signals` gives them by coarse channel. The truth table is also written as `<stem>_truth.csv`.
    """
    path = Path(path)
    n_chans = n_coarse_channels * coarse_channel_width
    hdr = dict(header) if header else bl_header(n_chans, coarse_channel_width=coarse_channel_width)
    hdr["nchans"] = n_chans
    root = np.random.SeedSequence(seed)
    placement_seed, *channel_seeds = root.spawn(n_coarse_channels + 1)
    if signals is None:
        signals = _spread_signals(0 if noise_only else n_signals, n_coarse_channels, coarse_channel_width,
                                  n_time, hdr, snr_range, drift_range, width_range, doppler_smearing,
                                  placement_seed)
    rows = []
    with create_writer(path, hdr, n_time) as writer:
        for cc in range(n_coarse_channels):
            chosen = list(signals.get(cc, ()))
            block = synthesize_coarse_channel(hdr, cc, coarse_channel_width, n_time, chosen,
                                              seed=np.random.default_rng(channel_seeds[cc]))
            writer.write(cc * coarse_channel_width, block)
            del block
            for s in chosen:
                index = cc * coarse_channel_width + s.index
                rows.append({"freq_start": hdr["fch1"] + hdr["foff"] * index, **asdict(s),
                             "coarse_channel": cc, "index": index})
            log.info("%s: coarse channel %d/%d written", path, cc + 1, n_coarse_channels)
    truth = pd.DataFrame(rows, columns=TRUTH_COLUMNS)
    if write_truth:
        truth.to_csv(truth_path(path), index=False, float_format="%.9f")
    return path, truth


def _spread_signals(n: int, n_coarse: int, width: int, n_time: int, hdr: Mapping[str, Any],
                    snr_range, drift_range, width_range, doppler_smearing, seed) -> dict[int, list[Signal]]:
    rng = np.random.default_rng(seed)
    counts = np.bincount(rng.integers(0, n_coarse, n), minlength=n_coarse) if n else np.zeros(n_coarse, int)
    return {cc: random_signals(int(k), coarse_channel_width=width, n_time=n_time, tsamp=hdr["tsamp"],
                               foff_hz=hdr["foff"] * 1e6, snr_range=snr_range, drift_range=drift_range,
                               width_range=width_range, doppler_smearing=doppler_smearing, seed=rng)
            for cc, k in enumerate(counts) if k}


#: ABACAD: files 0, 2, 4 look at the target, 1, 3, 5 at three other sources.
CADENCE_ON = (0, 2, 4)


def make_cadence(out_dir: str | os.PathLike, signals: Sequence[tuple[Signal, Sequence[int]]] = (), *,
                 n_coarse_channels: int = 1, coarse_channel_width: int = COARSE_WIDTH, n_time: int = N_TIME,
                 target: str = "SYNTH_TARGET", off_sources: Sequence[str] = ("OFF_A", "OFF_B", "OFF_C"),
                 slew_s: float = 30.0, tstart: float = 60000.0, ext: str = ".h5", seed: Any = None
                 ) -> tuple[list[Path], pd.DataFrame]:
    """Six files of an ABACAD cadence over one band; return their paths and the truth of every file.

    Each signal is `(Signal, files)`: `Signal.index` is the file channel at the start of file 0 and
    it appears in the files listed (0..5), where it starts where its drift has carried it by then
    (files follow each other after `slew_s` seconds, the first at MJD `tstart`). Truth rows carry `file`
    (0..5) and `path`.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    n_chans = n_coarse_channels * coarse_channel_width
    obs_seconds = n_time * TSAMP
    sources = [target if k in CADENCE_ON else off_sources[k // 2] for k in range(6)]
    seeds = np.random.default_rng(seed).integers(0, 2**63 - 1, size=6)
    paths, truths = [], []
    for k, source in enumerate(sources):
        elapsed = k * (obs_seconds + slew_s)
        header = bl_header(n_chans, source_name=source, tstart=tstart + elapsed / 86400.0,
                           coarse_channel_width=coarse_channel_width)
        by_channel: dict[int, list[Signal]] = {}
        for signal, files in signals:
            if k not in files:
                continue
            index = round(signal.index + signal.drift_rate * elapsed / FOFF_HZ)
            cc, local = divmod(index, coarse_channel_width)
            if not 0 <= cc < n_coarse_channels:
                raise ValueError(f"signal at channel {signal.index} drifts out of the band by file {k}")
            by_channel.setdefault(cc, []).append(Signal(local, signal.drift_rate, signal.snr, signal.width,
                                                        signal.doppler_smearing))
        path = out / f"cadence_{k}_{'ON' if k in CADENCE_ON else 'OFF'}_{source}{ext}"
        path, truth = make_observation(path, n_coarse_channels=n_coarse_channels,
                                       coarse_channel_width=coarse_channel_width, n_time=n_time,
                                       signals=by_channel, seed=int(seeds[k]), header=header)
        paths.append(path)
        truths.append(truth.assign(file=k, path=str(path)))
    return paths, pd.concat(truths, ignore_index=True)
