"""Observations: `.fil` and `.h5` readers and writers, read one coarse channel at a time."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from bl_reservoir.errors import InvalidObservation
from bl_reservoir.io.header import coarse_channel_width, frequencies
from bl_reservoir.io.observation import Observation

__all__ = [
    "Observation",
    "coarse_channel_width",
    "create_writer",
    "frequencies",
    "open_observation",
    "write_fil",
    "write_h5",
]


def _readers() -> dict[str, type]:
    from bl_reservoir.io.filterbank import FilterbankObservation
    from bl_reservoir.io.hdf5 import HDF5Observation

    return {".fil": FilterbankObservation, ".h5": HDF5Observation}


def _writers() -> dict[str, type]:
    from bl_reservoir.io.filterbank import FilterbankWriter
    from bl_reservoir.io.hdf5 import HDF5Writer

    return {".fil": FilterbankWriter, ".h5": HDF5Writer}


def _kind(path: str, table: Mapping[str, type]) -> type:
    ext = os.path.splitext(path)[1].lower()
    if ext not in table:
        raise InvalidObservation(path, f"unknown file kind {ext or '(no extension)'!r}; expected .fil or .h5")
    return table[ext]


def open_observation(path_or_uri: str | os.PathLike, coarse_channel_width: int | None = None) -> Observation:
    """Open a `.fil` or `.h5` observation by local path or URI (remote ones are fetched first)."""
    path = os.fspath(path_or_uri)
    if "://" in path and not path.startswith("file://"):
        from bl_reservoir.io.fetch import fetch_input  # remote: download into the cache

        path = os.fspath(fetch_input(path))
    path = path.removeprefix("file://")
    reader = _kind(path, _readers())
    if not os.path.exists(path):
        raise InvalidObservation(path, "no such file")
    if os.path.isdir(path):
        raise InvalidObservation(path, "is a directory, not an observation file")
    return reader(path, coarse_channel_width=coarse_channel_width)


def create_writer(path: str | os.PathLike, header: Mapping[str, Any], n_time: int):
    """A block writer for `path` by its extension: `.write(start_channel, block)`, then `.close()`."""
    path = os.fspath(path)
    return _kind(path, _writers())(path, header, n_time)


def _write(path: str | os.PathLike, header: Mapping[str, Any], data: np.ndarray) -> None:
    data = np.asarray(data)
    if data.ndim == 2:
        data = data[:, None, :]
    header = {**header, "nchans": data.shape[2], "nifs": data.shape[1]}
    with create_writer(path, header, data.shape[0]) as writer:
        for ifs in range(data.shape[1]):
            writer.write(0, data[:, ifs, :], ifs=ifs)


def write_fil(path: str | os.PathLike, header: Mapping[str, Any], data: np.ndarray) -> None:
    """Write a SIGPROC `.fil` from a header mapping and a (n_time, n_chans) array."""
    if os.path.splitext(os.fspath(path))[1].lower() != ".fil":
        raise ValueError(f"{path}: write_fil needs a .fil path")
    _write(path, header, data)


def write_h5(path: str | os.PathLike, header: Mapping[str, Any], data: np.ndarray) -> None:
    """Write a bitshuffle-compressed BL `.h5` from a header mapping and a (n_time, n_chans) array."""
    if os.path.splitext(os.fspath(path))[1].lower() != ".h5":
        raise ValueError(f"{path}: write_h5 needs a .h5 path")
    _write(path, header, data)
