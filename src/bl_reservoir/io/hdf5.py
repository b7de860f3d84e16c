"""BL HDF5 (`.h5`): dataset `data` (n_time, n_ifs, n_chans), header in its attributes, bitshuffle."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import h5py
import hdf5plugin
import numpy as np

from bl_reservoir.errors import InvalidObservation
from bl_reservoir.io import header as _header
from bl_reservoir.io.observation import Observation

# Attributes BL files carry on `data` that are no header values.
_NON_HEADER_ATTRS = {"DIMENSION_LABELS", "DIMENSION_LIST", "REFERENCE_LIST", "CLASS", "VERSION"}
#: No compressor packs samples further (bitshuffle+LZ4 packs constant data ~175x, deflate at most ~1000x):
#: a `data` claiming more logical bytes than this times the file's size is a forged shape, not data.
MAX_COMPRESSION_RATIO = 1000
# Below this many logical bytes the ratio is not checked (tiny test files compress as they like).
_RATIO_CHECKED_FROM_BYTES = 64 * 2**20


def _open(path: str) -> h5py.File:
    if os.path.getsize(path) == 0:
        raise InvalidObservation(path, "file is empty (0 bytes)")
    try:
        return h5py.File(path, "r")
    except OSError as exc:
        raise InvalidObservation(path, f"not a readable HDF5 file ({_short(exc)})") from None


def header_and_length(file: h5py.File, path: str) -> tuple[dict[str, Any], int]:
    """(normalised header, n_time) of an open BL HDF5 file (a local path or a remote file object);
    `InvalidObservation` naming `path` when it is not one."""
    if "data" not in file or not isinstance(file["data"], h5py.Dataset):
        raise InvalidObservation(path, "no dataset 'data'; not a BL HDF5 observation")
    data = file["data"]
    raw = {k: v for k, v in data.attrs.items() if k not in _NON_HEADER_ATTRS and k in _header.KEY_TYPES}
    header = _header.normalize_header(raw, path)
    if data.ndim != 3:
        raise InvalidObservation(path, f"data has shape {data.shape}, expected (n_time, n_ifs, n_chans)")
    if data.dtype.kind not in "uif":
        what = "strings" if data.dtype.kind in "SUO" else f"{data.dtype} values"
        raise InvalidObservation(path, f"data holds {what}, not numbers")
    n_time, n_ifs, n_chans = data.shape
    if (n_ifs, n_chans) != (header["nifs"], header["nchans"]):
        raise InvalidObservation(
            path, f"data shape {data.shape} does not match attributes nifs={header['nifs']} "
            f"nchans={header['nchans']}")
    if n_time == 0:
        raise InvalidObservation(path, "data holds no spectra")
    return header, int(n_time)


def _check_storage(data: h5py.Dataset, path: str) -> None:
    """Refuse a `data` whose shape claims far more than the file could hold, before anything is read."""
    logical = data.size * data.dtype.itemsize
    file_bytes = os.path.getsize(path)
    if logical > max(_RATIO_CHECKED_FROM_BYTES, MAX_COMPRESSION_RATIO * file_bytes):
        raise InvalidObservation(path, f"data claims shape {data.shape} ({logical / 2**30:.1f} GiB of {data.dtype}) "
                                 f"but the file holds {file_bytes} bytes; no compression packs that much")


def _short(exc: Exception) -> str:
    return str(exc).split("(")[0].strip().rstrip(",") or type(exc).__name__


class HDF5Observation(Observation):
    """A `.h5` file read by slices; bitshuffle chunks are decoded by hdf5plugin."""

    def __init__(self, path: str | os.PathLike, coarse_channel_width: int | None = None):
        path = os.fspath(path)
        self._file = _open(path)
        try:
            header, n_time = header_and_length(self._file, path)
            _check_storage(self._file["data"], path)
            super().__init__(path, header, n_time, coarse_channel_width)
            self._data = self._file["data"]
        except BaseException:
            self._file.close()
            raise

    def _read(self, start: int, stop: int) -> np.ndarray:
        try:  # plain slicing: h5py's read_direct with a hyperslab is ~20x slower here
            block = self._data[:, 0, start:stop]
        except (OSError, ValueError) as exc:
            raise InvalidObservation(self.path, f"corrupt or truncated data in channels {start}..{stop} "
                                     f"({_short(exc)})") from None
        return block.astype(np.float32, copy=False)

    def close(self) -> None:
        self._file.close()


class HDF5Writer:
    """Write a BL `.h5` block by block, bitshuffle+LZ4 compressed, chunks one coarse channel wide."""

    def __init__(self, path: str | os.PathLike, header: Mapping[str, Any], n_time: int,
                 chunk_width: int | None = None):
        self.path = os.fspath(path)
        self.header = dict(header)
        self.header.setdefault("nbits", 32)
        self.header.setdefault("nifs", 1)
        nchans, nifs = int(self.header["nchans"]), int(self.header["nifs"])
        if chunk_width is None:
            chunk_width = min(nchans, self.header.get("nfpc") or _header.KNOWN_COARSE_WIDTHS[0])
        dtype = {8: np.uint8, 16: np.uint16, 32: np.float32}[int(self.header["nbits"])]
        self._file = h5py.File(self.path, "w")
        self._file.attrs["CLASS"] = np.bytes_("FILTERBANK")
        self._file.attrs["VERSION"] = np.bytes_("1.0")
        self._data = self._file.create_dataset(
            "data", shape=(int(n_time), nifs, nchans), dtype=dtype,
            chunks=(1, 1, min(chunk_width, nchans)), **hdf5plugin.Bitshuffle(cname="lz4"))
        self._data.attrs["DIMENSION_LABELS"] = np.array([b"time", b"feed_id", b"frequency"])
        for key, value in self.header.items():
            if key in _header.KEY_TYPES:
                self._data.attrs[key] = np.bytes_(value) if isinstance(value, str) else value

    def write(self, start: int, block: np.ndarray, ifs: int = 0) -> None:
        """Store `block` (n_time, n) at fine channels [start, start + n) of IF `ifs`."""
        if self._data.dtype.kind in "ui":
            info = np.iinfo(self._data.dtype)
            block = np.clip(np.rint(block), info.min, info.max)
        self._data[:, ifs, start:start + block.shape[-1]] = block

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> HDF5Writer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
