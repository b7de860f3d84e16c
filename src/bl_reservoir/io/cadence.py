"""Cadences: six observations of one band, ON OFF ON OFF ON OFF, found from their headers or given as a list.

BL observes a target in an ABACAD cadence (ABABAB also): the target (A) at positions 0, 2 and 4,
other sources between, each observation a few minutes, one after the other. A signal from the
target is in the three ONs and none of the OFFs. `group_cadences` finds such cadences among any
observations from what their headers say: band (overlapping `fch1 .. fch1 + nchans * foff`),
`tstart`, `source_name`, and the length of each (n_time * tsamp).

The rule (docs/formats.md): observations of overlapping bands are put in time order; a gap from
the end of one to the start of the next over `max_gap_s` ends a run; each run is cut into
consecutive sixes whose sources follow ON, OFF, ON, OFF, ON, OFF (the ON source at 0, 2 and 4,
another source at 1, 3 and 5). Whatever is left over is refused with a reason. A cadence's id is
the observation name of its first ON.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bl_reservoir.errors import FetchError, InvalidObservation, ReservoirError, UsageError
from bl_reservoir.io.fetch import filesystem, obs_name, reason, scheme

#: Positions of the ON source in a cadence; the others are OFF.
ON_POSITIONS = (0, 2, 4)
CADENCE_LENGTH = 6
DEFAULT_MAX_GAP_S = 30 * 60.0
_SECONDS_PER_DAY = 86400.0


@dataclass(frozen=True)
class ObservationSummary:
    """What grouping needs of one observation; `key` is what the caller knows it by (its input URI)."""

    key: str
    source: str
    tstart: float                 # MJD
    fmin_mhz: float
    fmax_mhz: float
    duration_s: float = 0.0       # n_time * tsamp; 0 when unknown (gaps are then start to start)

    @property
    def name(self) -> str:
        return obs_name(self.key)

    @property
    def end(self) -> float:
        """End of the observation, MJD."""
        return self.tstart + self.duration_s / _SECONDS_PER_DAY

    @classmethod
    def unknown(cls, key: str) -> ObservationSummary:
        """A summary of an input whose header could not be read (a cadence given as a list may hold one)."""
        return cls(key, "", 0.0, 0.0, 0.0)

    @classmethod
    def from_header(cls, key: str, header: dict[str, Any], n_time: int | None = None) -> ObservationSummary:
        fch1, foff, nchans = float(header["fch1"]), float(header["foff"]), int(header["nchans"])
        edges = sorted((fch1, fch1 + foff * nchans))
        duration = float(header["tsamp"]) * n_time if n_time else 0.0
        return cls(key, str(header.get("source_name", "")).strip(), float(header["tstart"]), edges[0], edges[1],
                   duration)


@dataclass(frozen=True)
class Cadence:
    """Six observations, ON first; `id` is the first ON's observation name."""

    members: tuple[ObservationSummary, ...]
    id: str = field(init=False)

    def __post_init__(self) -> None:
        if len(self.members) != CADENCE_LENGTH:
            raise ValueError(f"a cadence has {CADENCE_LENGTH} observations, not {len(self.members)}")
        object.__setattr__(self, "id", self.members[0].name)

    @property
    def target(self) -> str:
        return self.members[0].source

    @property
    def keys(self) -> list[str]:
        return [m.key for m in self.members]

    @property
    def band(self) -> tuple[float, float]:
        """The band all six share, MHz."""
        return max(m.fmin_mhz for m in self.members), min(m.fmax_mhz for m in self.members)


@dataclass(frozen=True)
class Refused:
    """Observations that form no cadence, and why."""

    keys: tuple[str, ...]
    reason: str


def is_on_off(sources: Sequence[str]) -> bool:
    """ON, OFF, ON, OFF, ON, OFF: the first source at 0, 2, 4 and another source at 1, 3, 5."""
    on = _norm(sources[0])
    return bool(on) and all((_norm(s) == on) == (k in ON_POSITIONS) for k, s in enumerate(sources))


def _norm(source: str) -> str:
    return source.strip().upper()


def _overlap(a: ObservationSummary, b: ObservationSummary) -> bool:
    return a.fmin_mhz < b.fmax_mhz and b.fmin_mhz < a.fmax_mhz


def _bands(observations: Sequence[ObservationSummary]) -> list[list[ObservationSummary]]:
    """Groups of observations whose bands overlap (transitively), each in time order."""
    groups: list[list[ObservationSummary]] = []
    for obs in sorted(observations, key=lambda o: (o.fmin_mhz, o.fmax_mhz, o.tstart)):
        if groups and any(_overlap(obs, other) for other in groups[-1]):
            groups[-1].append(obs)
        else:
            groups.append([obs])
    return [sorted(g, key=lambda o: (o.tstart, o.key)) for g in groups]


def _runs(band: list[ObservationSummary], max_gap_s: float) -> list[list[ObservationSummary]]:
    runs = [[band[0]]]
    for prev, obs in zip(band, band[1:]):
        if (obs.tstart - prev.end) * _SECONDS_PER_DAY > max_gap_s:
            runs.append([obs])
        else:
            runs[-1].append(obs)
    return runs


def _why(left: list[ObservationSummary], max_gap_s: float) -> str:
    sources = " ".join(o.source or "?" for o in left)
    where = f"{len(left)} observation(s) from MJD {left[0].tstart:.5f} ({sources})"
    if len(left) < CADENCE_LENGTH:
        return (f"{where}: a cadence needs {CADENCE_LENGTH} of one band, each starting within "
                f"{max_gap_s / 60:g} min of the previous one's end")
    return f"{where}: the sources do not follow ON, OFF, ON, OFF, ON, OFF"


def group_cadences(observations: Iterable[ObservationSummary], max_gap_s: float = DEFAULT_MAX_GAP_S
                   ) -> tuple[list[Cadence], list[Refused]]:
    """The cadences among `observations` (module docstring), and what was refused with a reason."""
    found: list[Cadence] = []
    refused: list[Refused] = []
    observations = list(observations)
    if not observations:
        return found, refused
    for band in _bands(observations):
        for run in _runs(band, max_gap_s):
            i, left = 0, []
            while i < len(run):
                six = run[i:i + CADENCE_LENGTH]
                if len(six) == CADENCE_LENGTH and is_on_off([o.source for o in six]):
                    if left:
                        refused.append(Refused(tuple(o.key for o in left), _why(left, max_gap_s)))
                        left = []
                    found.append(Cadence(tuple(six)))
                    i += CADENCE_LENGTH
                else:
                    left.append(run[i])
                    i += 1
            if left:
                refused.append(Refused(tuple(o.key for o in left), _why(left, max_gap_s)))
    return sorted(found, key=lambda c: (c.members[0].tstart, c.id)), refused


def read_cadence_list(path: str | os.PathLike) -> list[list[str]]:
    """A cadence list as turboSETI's find_event_pipeline takes it: six inputs a line, ON first, separated
    by spaces or commas; blank lines and `#` comments skipped. `UsageError` naming the line otherwise."""
    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise UsageError(f"{path}: cannot read the cadence list ({exc.strerror})") from None
    cadences = []
    for number, line in enumerate(lines, start=1):
        items = line.split("#", 1)[0].replace(",", " ").split()
        if not items:
            continue
        if len(items) != CADENCE_LENGTH:
            raise UsageError(f"{path}:{number}: a cadence line holds {CADENCE_LENGTH} inputs (ON first), "
                             f"not {len(items)}")
        cadences.append(items)
    if not cadences:
        raise UsageError(f"{path}: no cadence in the list")
    return cadences


def summarize(uri: str) -> ObservationSummary:
    """The summary of the observation at `uri` from its header alone: a local file is opened, a remote
    one read in a few ranged requests (never downloaded whole)."""
    if scheme(uri) == "file":
        from bl_reservoir.io import open_observation

        with open_observation(uri) as obs:
            return ObservationSummary.from_header(uri, obs.header, obs.n_time)
    ext = os.path.splitext(uri.split("?", 1)[0])[1].lower()
    if ext not in (".h5", ".fil"):
        raise InvalidObservation(uri, f"unknown file kind {ext or '(no extension)'!r}; expected .fil or .h5")
    fs = filesystem(uri)
    try:
        size = int(fs.info(uri)["size"])
        with fs.open(uri, "rb", block_size=1 << 16) as f:
            if ext == ".h5":
                import h5py

                from bl_reservoir.io.hdf5 import header_and_length

                with h5py.File(f, "r") as h5:
                    header, n_time = header_and_length(h5, uri)
            else:
                from bl_reservoir.io.filterbank import parse_header, spectra_in

                header, offset = parse_header(f, uri)
                n_time = spectra_in(header, size - offset, uri)
    except ReservoirError:
        raise
    except FileNotFoundError:
        raise FetchError(uri, "no such object") from None
    except Exception as exc:  # noqa: BLE001 - any backend or format error becomes one line naming the URI
        raise FetchError(uri, f"cannot read its header ({reason(exc)})") from None
    return ObservationSummary.from_header(uri, header, n_time)


def summarize_all(uris: Sequence[str], threads: int = 16) -> tuple[list[ObservationSummary], list[Refused]]:
    """Summaries of many inputs, read side by side; an unreadable one is refused with its error."""
    def one(uri: str) -> ObservationSummary | Refused:
        try:
            return summarize(uri)
        except ReservoirError as exc:
            return Refused((uri,), f"header not readable: {exc}")

    with ThreadPoolExecutor(max_workers=max(1, min(threads, len(uris)))) as pool:
        found = list(pool.map(one, uris))
    return ([f for f in found if isinstance(f, ObservationSummary)], [f for f in found if isinstance(f, Refused)])
