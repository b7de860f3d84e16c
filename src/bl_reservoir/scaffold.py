"""`bl-reservoir new-algorithm`: a new external algorithm package that runs as-is.

The package is self-contained (it runs in its own venv, without bl-reservoir): a
`requirements.txt`, a C1 script with a small reader for `.h5`/`.fil` and a toy search to replace,
and a README saying how to run it.
"""

from __future__ import annotations

import os
from pathlib import Path

from bl_reservoir.errors import UsageError

REQUIREMENTS = "numpy\npandas\nh5py\nhdf5plugin\n"

SCRIPT = '''"""{name}/{script}: an external bl-reservoir algorithm (contract C1).

    python {script}.py INPUT [OUT_DIR] [--threshold 8] [--stamp-width 64] [--max-hits 16]

Reads the observation one coarse channel at a time, finds narrowband hits and writes the three
original results files (header.pkl, info_df.pkl, filtered.npy) into OUT_DIR; bl-reservoir adds
the JSON/Parquet copies and the manifest. Replace `find_hits` with your search.
"""

import argparse
import pickle
import struct
import sys
from pathlib import Path

import numpy as np
import pandas as pd

BL_COARSE_WIDTHS = (1048576, 1033216, 999424)
_FIL_INTS = {{"telescope_id", "machine_id", "data_type", "barycentric", "pulsarcentric", "nbits", "nchans",
             "nifs", "ibeam", "nbeams", "nfpc", "nsamples"}}
_FIL_STRS = {{"rawdatafile", "source_name"}}


class BadInput(Exception):
    """An input this script cannot read: reported as one line, without a traceback."""


def read_header(path):
    """(header dict, reader) where reader(start, stop) gives float32 (n_time, stop - start)."""
    if path.suffix == ".h5":
        import h5py
        import hdf5plugin  # noqa: F401  (registers the bitshuffle filter BL files use)

        try:
            f = h5py.File(path, "r")
            data = f["data"]
        except (OSError, KeyError) as exc:
            raise BadInput(f"not a BL .h5 file ({{exc}})")
        header = {{k: (v.decode() if isinstance(v, bytes) else v.item() if hasattr(v, "item") else v)
                  for k, v in data.attrs.items() if k != "DIMENSION_LABELS"}}
        return header, lambda a, b: np.asarray(data[:, 0, a:b], dtype=np.float32)
    if path.suffix == ".fil":
        header, offset = _fil_header(path)
        dtype = {{8: np.uint8, 16: np.uint16, 32: np.float32}}[header["nbits"]]
        raw = np.memmap(path, dtype=dtype, mode="r", offset=offset)
        raw = raw[: raw.size - raw.size % header["nchans"]].reshape(-1, header["nchans"])
        return header, lambda a, b: np.asarray(raw[:, a:b], dtype=np.float32)
    raise BadInput("expected a .h5 or .fil file")


def _fil_header(path):
    def word(f):
        (n,) = struct.unpack("<i", f.read(4))
        return f.read(n).decode("ascii")

    header = {{}}
    with open(path, "rb") as f:
        try:
            if word(f) != "HEADER_START":
                raise BadInput("no HEADER_START; not a filterbank file")
            while (key := word(f)) != "HEADER_END":
                if key in _FIL_STRS:
                    header[key] = word(f)
                elif key in _FIL_INTS:
                    header[key] = struct.unpack("<i", f.read(4))[0]
                else:
                    header[key] = struct.unpack("<d", f.read(8))[0]
        except (struct.error, UnicodeDecodeError):
            raise BadInput("corrupt filterbank header")
        for key in ("src_raj", "src_dej"):  # SIGPROC packs [-]hhmmss.s: decimal hours and degrees, as BL .h5
            if key in header:
                header[key] = _decimal(header[key])
        return header, f.tell()


def _decimal(packed):
    sign, value = (-1.0 if packed < 0 else 1.0), abs(packed)
    whole, minutes = int(value // 10000), int(value % 10000 // 100)
    return sign * (whole + minutes / 60.0 + (value - whole * 10000 - minutes * 100) / 3600.0)


def coarse_width(header):
    """Fine channels per coarse channel: `nfpc`, else a BL width dividing nchans, else the whole band."""
    nchans = int(header["nchans"])
    if header.get("nfpc"):
        return int(header["nfpc"])
    return next((w for w in BL_COARSE_WIDTHS if nchans % w == 0), nchans)


def find_hits(block, threshold, max_hits, spacing):
    """Toy search: the peak of each spectrum (time row) in robust sigmas above its median, best over
    time; channels above `threshold`, at least `spacing` apart. Returns (indices in block, scores)."""
    median = np.median(block, axis=1, keepdims=True)
    sigma = 1.4826 * np.median(np.abs(block - median), axis=1, keepdims=True)
    score = ((block - median) / np.where(sigma > 0, sigma, 1.0)).max(axis=0)
    kept = []
    for index in np.argsort(score)[::-1]:
        if score[index] <= threshold or len(kept) == max_hits:
            break
        if all(abs(int(index) - k) >= spacing for k in kept):
            kept.append(int(index))
    kept.sort()
    return np.array(kept, dtype=int), score[kept]


def stamp(block, index, width):
    """(n_time, width) cut centred on `index`, zero-padded at the band edges."""
    out = np.zeros((block.shape[0], width), dtype=np.float32)
    lo = index - width // 2
    a, b = max(lo, 0), min(lo + width, block.shape[1])
    out[:, a - lo:b - lo] = block[:, a:b]
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("input")
    parser.add_argument("out_dir", nargs="?")
    parser.add_argument("--threshold", type=float, default=8.0, help="robust sigmas (default 8)")
    parser.add_argument("--stamp-width", type=int, default=64, help="fine channels per stamp (default 64)")
    parser.add_argument("--max-hits", type=int, default=16, help="per coarse channel (default 16)")
    args = parser.parse_args(argv)
    path = Path(args.input)
    out = Path(args.out_dir) if args.out_dir else path.with_suffix("")
    try:
        if not path.is_file():
            raise BadInput("no such file")
        header, read = read_header(path)
        width = coarse_width(header)
        rows, stamps = [], []
        for cc in range(int(header["nchans"]) // width):
            block = read(cc * width, (cc + 1) * width)
            for index, score in zip(*find_hits(block, args.threshold, args.max_hits, args.stamp_width)):
                fine = cc * width + int(index)
                rows.append({{"index": fine, "freqs": header["fch1"] + header["foff"] * fine,
                             "coarse_channel": cc, "snr": float(score)}})
                stamps.append(stamp(block, int(index), args.stamp_width))
    except BadInput as exc:
        print(f"{{path}}: {{exc}}", file=sys.stderr)
        return 1
    n_time = int(stamps[0].shape[0]) if stamps else 0
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "header.pkl", "wb") as f:
        pickle.dump(header, f)
    pd.DataFrame(rows, columns=["index", "freqs", "coarse_channel", "snr"]).to_pickle(out / "info_df.pkl")
    array = np.stack(stamps) if stamps else np.zeros((0, n_time, args.stamp_width), np.float32)
    np.save(out / "filtered.npy", array.astype(np.float32), allow_pickle=False)
    print(f"{{path}}: {{len(rows)}} hits written to {{out}}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
'''

README = """# {name}

An external algorithm package for bl-reservoir (contract C1), made by `bl-reservoir new-algorithm`.

- `requirements.txt`: what `{script}.py` needs; bl-reservoir builds a virtual environment from
  it on first use (`bl-reservoir env build {name}`), and rebuilds it when the file changes.
- `{script}.py`: `python {script}.py INPUT [OUT_DIR] [--option value ...]`, writes `header.pkl`,
  `info_df.pkl` (columns `index`, `freqs` in MHz, `coarse_channel`, ...) and `filtered.npy`
  (float32, one `(n_time, width)` stamp per hit). Edit `find_hits` to make it your search.
  Every other `*.py` file here not starting with `_` is an algorithm too.

Run it on an observation and put the result in the bucket:

```bash
export BL_RESERVOIR_ALGORITHMS={parent}
bl-reservoir algorithms                       # lists {name}/{script}
bl-reservoir run {name}/{script} obs.h5 -- --threshold 8
```
"""


def new_algorithm(name: str, directory: str | os.PathLike = ".", script: str = "search") -> Path:
    """Create `<directory>/<name>/` with requirements.txt, `<script>.py` and README.md; returns the folder."""
    if not name.isidentifier() or not script.isidentifier():
        raise UsageError(f"{name}/{script}: package and script names must be Python identifiers")
    package_dir = Path(directory).expanduser().resolve() / name
    if package_dir.exists() and any(package_dir.iterdir()):
        raise UsageError(f"{package_dir}: already exists and is not empty")
    package_dir.mkdir(parents=True, exist_ok=True)
    fields = {"name": name, "script": script, "parent": package_dir.parent}
    (package_dir / "requirements.txt").write_text(REQUIREMENTS)
    (package_dir / f"{script}.py").write_text(SCRIPT.format(**fields))
    (package_dir / "README.md").write_text(README.format(**fields))
    return package_dir
