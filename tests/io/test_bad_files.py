"""Every kind of bad file raises InvalidObservation naming the file and the reason."""

from __future__ import annotations

import struct

import h5py
import numpy as np
import pytest

from bl_reservoir.errors import InvalidObservation, ReservoirError
from bl_reservoir.io import open_observation, write_fil, write_h5
from bl_reservoir.io.filterbank import encode_header
from bl_reservoir.synth import bl_header

HEADER = bl_header(1024)
DATA = np.ones((4, 1024), dtype=np.float32)


def _word(text: str) -> bytes:
    return struct.pack("<i", len(text)) + text.encode()


def _expect(path, reason: str):
    with pytest.raises(InvalidObservation) as info:
        open_observation(path).coarse_channel(0)
    assert isinstance(info.value, ReservoirError)
    assert str(path) in str(info.value)
    assert reason in str(info.value)
    assert "\n" not in str(info.value)


def test_truncated_fil(tmp_path):
    path = tmp_path / "trunc.fil"
    write_fil(path, HEADER, DATA)
    with open(path, "r+b") as f:
        f.truncate(path.stat().st_size - 100)
    _expect(path, "truncated")


def test_fil_header_without_header_end(tmp_path):
    path = tmp_path / "noend.fil"
    path.write_bytes(encode_header(HEADER)[: -len(_word("HEADER_END"))])
    _expect(path, "no HEADER_END")


def test_fil_unknown_key(tmp_path):
    path = tmp_path / "unknown.fil"
    head = encode_header(HEADER).replace(_word("HEADER_END"), _word("frobnicate") + struct.pack("<i", 3) + _word("HEADER_END"))
    path.write_bytes(head + DATA.tobytes())
    _expect(path, "unknown header key 'frobnicate'")


def test_fil_missing_key(tmp_path):
    path = tmp_path / "missing.fil"
    header = {k: v for k, v in HEADER.items() if k != "nchans"}
    path.write_bytes(encode_header(header) + DATA.tobytes())
    _expect(path, "missing nchans")


@pytest.mark.parametrize("nbits", [1, 4, 64])
def test_fil_unsupported_nbits(tmp_path, nbits):
    path = tmp_path / "nbits.fil"
    path.write_bytes(encode_header({**HEADER, "nbits": nbits}) + DATA.tobytes())
    _expect(path, f"nbits is {nbits}")


def test_fil_header_only(tmp_path):
    path = tmp_path / "empty-data.fil"
    path.write_bytes(encode_header(HEADER))
    _expect(path, "holds no samples")


def test_fil_not_sigproc(tmp_path):
    path = tmp_path / "garbage.fil"
    path.write_bytes(b"\x00\xff" * 500)
    _expect(path, "not a SIGPROC filterbank")


@pytest.mark.parametrize("ext", [".fil", ".h5"])
def test_zero_length(tmp_path, ext):
    path = tmp_path / f"zero{ext}"
    path.write_bytes(b"")
    _expect(path, "empty (0 bytes)")


def test_h5_without_data(tmp_path):
    path = tmp_path / "nodata.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("spectra", data=np.zeros((2, 1, 8)))
    _expect(path, "no dataset 'data'")


def test_h5_shape_attribute_mismatch(tmp_path):
    path = tmp_path / "mismatch.h5"
    write_h5(path, HEADER, DATA)
    with h5py.File(path, "r+") as f:
        f["data"].attrs["nchans"] = 2048
    _expect(path, "does not match attributes")


def test_h5_missing_attribute(tmp_path):
    path = tmp_path / "noattr.h5"
    write_h5(path, HEADER, DATA)
    with h5py.File(path, "r+") as f:
        del f["data"].attrs["foff"]
    _expect(path, "missing foff")


def test_h5_not_hdf5(tmp_path):
    path = tmp_path / "text.h5"
    path.write_text("this is not hdf5\n" * 20)
    _expect(path, "not a readable HDF5 file")


def test_h5_truncated(tmp_path):
    path = tmp_path / "trunc.h5"
    write_h5(path, HEADER, np.random.default_rng(0).random((4, 1024), dtype=np.float32))
    with open(path, "r+b") as f:
        f.truncate(path.stat().st_size // 2)
    _expect(path, str(path))


def test_unknown_extension_and_missing_file(tmp_path):
    _expect(tmp_path / "x.txt", "unknown file kind '.txt'")
    _expect(tmp_path / "absent.h5", "no such file")


# ---------------------------------------------------------------- hostile headers and data (issue 18)

def _info_error(path, capsys) -> str:
    """The one line `bl-reservoir info FILE` prints for a refused file (exit code 3, no traceback)."""
    from bl_reservoir.cli import main

    assert main(["info", str(path)]) == InvalidObservation.exit_code
    captured = capsys.readouterr()
    assert captured.out == "" and "Traceback" not in captured.err
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


@pytest.mark.parametrize("ext", [".fil", ".h5"])
@pytest.mark.parametrize(("key", "value"), [("foff", float("nan")), ("fch1", float("nan")), ("tsamp", float("inf")),
                                            ("tstart", float("-inf"))])
def test_a_non_finite_header_value_is_refused(tmp_path, capsys, ext, key, value):
    path = tmp_path / f"bad_{key}{ext}"
    (write_fil if ext == ".fil" else write_h5)(path, {**HEADER, key: value}, DATA)
    expected = f"{path}: header key {key!r} is {value}, expected a finite number"
    with pytest.raises(InvalidObservation) as info:
        open_observation(path)
    assert str(info.value) == expected
    assert _info_error(path, capsys) == f"bl-reservoir: error: {expected}"


@pytest.mark.parametrize(("dtype", "what"), [("S2", "strings"), (h5py.string_dtype(), "strings"),
                                             ("complex64", "complex64 values"), ("bool", "bool values")])
def test_h5_data_that_is_not_numbers(tmp_path, capsys, dtype, what):
    path = tmp_path / "strings.h5"
    with h5py.File(path, "w") as f:
        data = f.create_dataset("data", shape=(4, 1, 1024), dtype=dtype)
        for key, value in HEADER.items():
            data.attrs[key] = np.bytes_(value) if isinstance(value, str) else value
    assert _info_error(path, capsys) == f"bl-reservoir: error: {path}: data holds {what}, not numbers"


def test_h5_claiming_2_to_the_33_channels_is_refused_before_allocating(tmp_path, capsys):
    """A 2.5 kB file whose `data` claims 16 x 2**33 float32 (512 GiB): refused at open, nothing read."""
    import resource

    path = tmp_path / "huge.h5"
    nchans = 2**33 + 1   # no known coarse-channel width divides it: one coarse channel of 512 GiB
    with h5py.File(path, "w") as f:
        data = f.create_dataset("data", shape=(16, 1, nchans), dtype="f4", chunks=(1, 1, 2**20))
        for key, value in {**HEADER, "nchans": nchans}.items():
            data.attrs[key] = np.bytes_(value) if isinstance(value, str) else value
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    line = _info_error(path, capsys)
    assert line == (f"bl-reservoir: error: {path}: data claims shape (16, 1, {nchans}) (512.0 GiB of float32) but "
                    f"the file holds {path.stat().st_size} bytes; no compression packs that much")
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200_000   # KiB: nothing big allocated


def test_a_coarse_channel_too_large_to_allocate_is_refused_at_open(tmp_path, capsys):
    """A sparse 2 GiB .fil (one 8-bit spectrum of 2**31 - 1 channels): whole, but one coarse channel as
    float32 would take 8 GiB, over `MAX_COARSE_CHANNEL_BYTES`."""
    from bl_reservoir.io.observation import MAX_COARSE_CHANNEL_BYTES

    nchans = 2**31 - 1
    path = tmp_path / "wide.fil"
    head = encode_header({**HEADER, "nbits": 8, "nchans": nchans, "nfpc": nchans})
    with open(path, "wb") as f:
        f.write(head)
        f.truncate(len(head) + nchans)   # sparse: no disk blocks, every sample zero
    assert MAX_COARSE_CHANNEL_BYTES < nchans * 4
    expected = (f"{path}: one coarse channel (1 x {nchans} samples) would take 8.0 GiB, over the 4 GiB a "
                "block may use; set nfpc in the header to read it in narrower coarse channels")
    assert _info_error(path, capsys) == f"bl-reservoir: error: {expected}"
