"""turboseti/find_et: turboSETI's de-Doppler search as an external bl-reservoir algorithm (contract C1).

    python find_et.py INPUT [OUT_DIR] [--max-drift 4] [--min-drift 0] [--snr 10] [--stamp-width 64]

Runs turboSETI 2.3.2 (`FindDoppler`) on the input, keeps its `.dat` and `.log` files, and turns
the `.dat` hits into the three original results files: `header.pkl`, `info_df.pkl` (`index`,
`freqs` in MHz, `coarse_channel`, `drift_rate` in Hz/s, `snr`, ...) and `filtered.npy` (one
`(n_time, stamp_width)` float32 cut of the waterfall per hit, centred where the hit starts).
It runs in its own environment (turbo-seti needs numpy < 2.4): `bl-reservoir env build turboseti`.
"""

import argparse
import logging
import pickle
import sys
from pathlib import Path

import numpy as np
import pandas as pd

BL_COARSE_WIDTHS = (1048576, 1033216, 999424)


def plain(value):
    """Header values as plain Python (blimpy gives astropy Angles and numpy scalars)."""
    if hasattr(value, "to_value"):
        return float(value.to_value())
    if isinstance(value, np.ndarray):
        return value.tolist() if value.size != 1 else value.item()
    if isinstance(value, np.generic):
        return value.item()
    return value.decode() if isinstance(value, bytes) else value


def read_header(path):
    from blimpy import Waterfall

    wf = Waterfall(str(path), load_data=False)
    return {k if isinstance(k, str) else k.decode(): plain(v) for k, v in wf.header.items()}


def coarse_width(header):
    nchans = int(header["nchans"])
    if header.get("nfpc"):
        return int(header["nfpc"])
    return next((w for w in BL_COARSE_WIDTHS if nchans % w == 0), nchans)


def reader(path, header):
    """reader(start, stop) -> float32 (n_time, stop - start) fine channels, without loading the file."""
    if path.suffix == ".h5":
        import h5py
        import hdf5plugin  # noqa: F401  (bitshuffle filter)

        data = h5py.File(path, "r")["data"]
        return lambda a, b: np.asarray(data[:, 0, a:b], dtype=np.float32)
    from blimpy.io.sigproc import len_header

    dtype = {8: np.uint8, 16: np.uint16, 32: np.float32}[int(header["nbits"])]
    raw = np.memmap(path, dtype=dtype, mode="r", offset=len_header(str(path)))
    raw = raw[: raw.size - raw.size % int(header["nchans"])].reshape(-1, int(header["nchans"]))
    return lambda a, b: np.asarray(raw[:, a:b], dtype=np.float32)


def stamps_for(read, n_chans, indices, width):
    out = []
    for index in indices:
        lo = int(index) - width // 2
        a, b = max(lo, 0), min(lo + width, n_chans)
        block = read(a, b)
        cut = np.zeros((block.shape[0], width), dtype=np.float32)
        cut[:, a - lo:b - lo] = block
        out.append(cut)
    return out


def read_dat(path):
    """turboSETI's .dat table (comment lines start with '#')."""
    names = ["top_hit", "drift_rate", "snr", "uncorrected_frequency", "corrected_frequency", "dat_index",
             "freq_start", "freq_end", "sefd", "sefd_freq", "coarse_channel", "full_number_of_hits"]
    if not path.is_file():
        return pd.DataFrame(columns=names)
    return pd.read_csv(path, sep=r"\s+", comment="#", names=names, header=None)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("input")
    parser.add_argument("out_dir", nargs="?")
    parser.add_argument("--max-drift", type=float, default=4.0, help="Hz/s (default 4)")
    parser.add_argument("--min-drift", type=float, default=0.0, help="Hz/s (default 0)")
    parser.add_argument("--snr", type=float, default=10.0, help="SNR threshold (default 10)")
    parser.add_argument("--stamp-width", type=int, default=64, help="fine channels per stamp (default 64)")
    args = parser.parse_args(argv)
    path = Path(args.input).resolve()
    out = Path(args.out_dir) if args.out_dir else path.with_suffix("")
    if not path.is_file():
        print(f"{path}: no such file", file=sys.stderr)
        return 1
    out.mkdir(parents=True, exist_ok=True)
    try:
        header = read_header(path)
    except Exception as exc:  # noqa: BLE001 - blimpy raises many kinds for a bad file; one line is what C1 asks
        print(f"{path}: not a readable observation ({type(exc).__name__}: {exc})", file=sys.stderr)
        return 1
    width = coarse_width(header)

    from turbo_seti.find_doppler.find_doppler import FindDoppler

    FindDoppler(str(path), max_drift=args.max_drift, min_drift=args.min_drift, snr=args.snr, out_dir=str(out),
                n_coarse_chan=int(header["nchans"]) // width, log_level_int=logging.WARNING).search()
    for leftover in out.glob("*.h5"):  # turboSETI's .fil -> .h5 conversion: not a result
        leftover.unlink()

    dat = read_dat(out / f"{path.stem}.dat")
    fch1, foff, nchans = float(header["fch1"]), float(header["foff"]), int(header["nchans"])
    index = np.rint((dat["uncorrected_frequency"].to_numpy(float) - fch1) / foff).astype(np.int64)
    hits = pd.DataFrame({
        "index": index,
        "freqs": dat["uncorrected_frequency"].to_numpy(float),
        "coarse_channel": index // width,
        "drift_rate": dat["drift_rate"].to_numpy(float),
        "snr": dat["snr"].to_numpy(float),
        "freq_start": dat["freq_start"].to_numpy(float),
        "freq_end": dat["freq_end"].to_numpy(float),
        "top_hit": dat["top_hit"].to_numpy(np.int64),
    })
    stamps = stamps_for(reader(path, header), nchans, index, args.stamp_width)
    n_time = stamps[0].shape[0] if stamps else 0
    with open(out / "header.pkl", "wb") as f:
        pickle.dump(header, f)
    hits.to_pickle(out / "info_df.pkl")
    array = np.stack(stamps) if stamps else np.zeros((0, n_time, args.stamp_width), np.float32)
    np.save(out / "filtered.npy", array.astype(np.float32), allow_pickle=False)
    print(f"{path}: {len(hits)} turboSETI hits written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
