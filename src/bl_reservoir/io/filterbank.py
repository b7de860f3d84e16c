"""SIGPROC filterbank (`.fil`): keyword header, then raw samples, read by positioned reads per spectrum."""

from __future__ import annotations

import math
import os
import struct
from collections.abc import Mapping
from typing import Any, BinaryIO

import numpy as np

from bl_reservoir.errors import InvalidObservation
from bl_reservoir.io import header as _header
from bl_reservoir.io.observation import Observation

#: Samples of each bit depth, as SIGPROC and blimpy store them.
SAMPLE_DTYPES = {8: np.dtype(np.uint8), 16: np.dtype(np.uint16), 32: np.dtype(np.float32)}

# Longest keyword we accept before calling the header corrupt (SIGPROC keys are short).
_MAX_KEYWORD = 80
_ANGLE_KEYS = ("src_raj", "src_dej")


def _sigproc_to_decimal(value: float) -> float:
    """SIGPROC packs angles as [-]hhmmss.s / ddmmss.s: return decimal hours or degrees."""
    sign = -1.0 if value < 0 else 1.0
    value = abs(value)
    whole = int(value // 10000)
    minutes = int((value - whole * 10000) // 100)
    seconds = value - whole * 10000 - minutes * 100
    return sign * (whole + minutes / 60.0 + seconds / 3600.0)


def _decimal_to_sigproc(value: float) -> float:
    sign = -1.0 if value < 0 else 1.0
    value = abs(value)
    whole = int(value)
    minutes = int((value - whole) * 60)
    seconds = (value - whole - minutes / 60.0) * 3600.0
    return sign * (whole * 10000 + minutes * 100 + seconds)


def _read_keyword(f: BinaryIO, path: str) -> str:
    raw = f.read(4)
    if len(raw) < 4:
        raise InvalidObservation(path, "header has no HEADER_END")
    (length,) = struct.unpack("<i", raw)
    if not 0 < length <= _MAX_KEYWORD:
        raise InvalidObservation(path, "corrupt header (bad keyword length); not a SIGPROC filterbank file?")
    word = f.read(length)
    if len(word) < length:
        raise InvalidObservation(path, "header has no HEADER_END")
    try:
        return word.decode("ascii")
    except UnicodeDecodeError:
        raise InvalidObservation(path, "corrupt header (keyword is not ASCII)") from None


def read_header(path: str | os.PathLike) -> tuple[dict[str, Any], int]:
    """Parse a filterbank header: (normalised header, byte offset of the first sample)."""
    path = os.fspath(path)
    with open(path, "rb") as f:
        if os.fstat(f.fileno()).st_size == 0:
            raise InvalidObservation(path, "file is empty (0 bytes)")
        return parse_header(f, path)


def parse_header(f: BinaryIO, path: str) -> tuple[dict[str, Any], int]:
    """The header of an open filterbank file (any binary file object, local or remote, at its start):
    (normalised header, byte offset of the first sample). `path` names the file in errors."""
    raw: dict[str, Any] = {}
    if _read_keyword(f, path) != "HEADER_START":
        raise InvalidObservation(path, "no HEADER_START; not a SIGPROC filterbank file")
    while True:
        key = _read_keyword(f, path)
        if key == "HEADER_END":
            break
        kind = _header.KEY_TYPES.get(key)
        if kind is None:
            if key == "signed":  # one byte, harmless, written by some SIGPROC tools
                f.read(1)
                continue
            raise InvalidObservation(path, f"unknown header key {key!r}")
        if kind is str:
            value: Any = _read_keyword_value(f, path)
        else:
            fmt = "<i" if kind is int else "<d"
            buf = f.read(struct.calcsize(fmt))
            if len(buf) < struct.calcsize(fmt):
                raise InvalidObservation(path, "header has no HEADER_END")
            (value,) = struct.unpack(fmt, buf)
        raw[key] = value
    offset = f.tell()
    for key in _ANGLE_KEYS:
        if key in raw:
            raw[key] = _sigproc_to_decimal(raw[key])
    return _header.normalize_header(raw, path), offset


def spectra_in(header: Mapping[str, Any], data_bytes: int, path: str) -> int:
    """How many whole spectra `data_bytes` of samples hold; `InvalidObservation` for none or a torn one."""
    spectrum_bytes = header["nifs"] * header["nchans"] * SAMPLE_DTYPES[header["nbits"]].itemsize
    if data_bytes <= 0:
        raise InvalidObservation(path, "header only: the file holds no samples")
    if data_bytes % spectrum_bytes:
        n_full = data_bytes // spectrum_bytes
        raise InvalidObservation(
            path, f"truncated: {data_bytes} data bytes is not a whole number of spectra "
            f"({spectrum_bytes} bytes each; {n_full} complete)")
    n_time = data_bytes // spectrum_bytes
    if "nsamples" in header and header["nsamples"] not in (0, n_time):
        raise InvalidObservation(path, f"header says nsamples={header['nsamples']} but the file holds {n_time}")
    return n_time


def _read_keyword_value(f: BinaryIO, path: str) -> str:
    raw = f.read(4)
    if len(raw) < 4:
        raise InvalidObservation(path, "header has no HEADER_END")
    (length,) = struct.unpack("<i", raw)
    if not 0 <= length <= 4096:
        raise InvalidObservation(path, "corrupt header (bad string length)")
    return f.read(length).decode("ascii", errors="replace")


def encode_header(header: Mapping[str, Any]) -> bytes:
    """SIGPROC header bytes for `header` (angles given in decimal hours/degrees)."""

    def word(text: str) -> bytes:
        data = text.encode("ascii")
        return struct.pack("<i", len(data)) + data

    out = [word("HEADER_START")]
    for key, value in header.items():
        kind = _header.KEY_TYPES.get(key)
        if kind is None:
            continue  # not a SIGPROC key (e.g. extra HDF5 attributes): has no place in a .fil
        out.append(word(key))
        if kind is str:
            out.append(word(str(value)))
        elif kind is int:
            out.append(struct.pack("<i", int(value)))
        else:
            number = float(value)
            if key in _ANGLE_KEYS:
                number = _decimal_to_sigproc(number)
            out.append(struct.pack("<d", number))
    out.append(word("HEADER_END"))
    return b"".join(out)


class FilterbankObservation(Observation):
    """A `.fil` file mapped read-only; each read copies one channel range into float32."""

    def __init__(self, path: str | os.PathLike, coarse_channel_width: int | None = None):
        path = os.fspath(path)
        header, offset = read_header(path)
        dtype = SAMPLE_DTYPES[header["nbits"]]
        spectrum_bytes = header["nifs"] * header["nchans"] * dtype.itemsize
        n_time = spectra_in(header, os.path.getsize(path) - offset, path)
        super().__init__(path, header, n_time, coarse_channel_width)
        self._dtype = dtype
        self._offset = offset
        self._spectrum_bytes = spectrum_bytes
        self._fd = os.open(path, os.O_RDONLY)

    def _read(self, start: int, stop: int) -> np.ndarray:
        # One positioned read per spectrum straight into the output: faster than faulting in
        # memmap pages (about 4x here) and never maps more than the block being read.
        raw = np.empty((self.n_time, stop - start), dtype=self._dtype)
        item = self._dtype.itemsize
        for t in range(self.n_time):
            view = memoryview(raw[t]).cast("B")
            got = os.preadv(self._fd, [view], self._offset + t * self._spectrum_bytes + start * item)
            if got != view.nbytes:
                raise InvalidObservation(self.path, f"truncated while reading spectrum {t}")
        return raw.astype(np.float32, copy=False)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __del__(self) -> None:
        fd = getattr(self, "_fd", None)
        if fd is not None:
            os.close(fd)


class FilterbankWriter:
    """Write a `.fil` block by block: header first, then samples through a writable memmap."""

    def __init__(self, path: str | os.PathLike, header: Mapping[str, Any], n_time: int):
        self.path = os.fspath(path)
        self.header = dict(header)
        self.header.setdefault("nbits", 32)
        self.header.setdefault("nifs", 1)
        self.dtype = SAMPLE_DTYPES.get(int(self.header["nbits"]))
        if self.dtype is None:
            raise ValueError(f"nbits must be 8, 16 or 32, not {self.header['nbits']}")
        head = encode_header(self.header)
        shape = (int(n_time), int(self.header["nifs"]), int(self.header["nchans"]))
        with open(self.path, "wb") as f:
            f.write(head)
            f.truncate(len(head) + math.prod(shape) * self.dtype.itemsize)
        self._data = np.memmap(self.path, dtype=self.dtype, mode="r+", offset=len(head), shape=shape)

    def write(self, start: int, block: np.ndarray, ifs: int = 0) -> None:
        """Store `block` (n_time, n) at fine channels [start, start + n) of IF `ifs`."""
        if self.dtype.kind in "ui":
            info = np.iinfo(self.dtype)
            block = np.clip(np.rint(block), info.min, info.max)
        self._data[:, ifs, start:start + block.shape[-1]] = block

    def close(self) -> None:
        self._data.flush()
        del self._data

    def __enter__(self) -> FilterbankWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
