"""Query parameters the JSON API and the pages share: hit filters, where a blank field means "not given".

An HTML form sends every field, filled or not (`min_snr=`); a blank value is taken as absent rather
than refused, so a form submitted with some fields empty filters by the others.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query
from pydantic import BeforeValidator, Field

from bl_reservoir.web.hits import HitFilter


def _blank_is_none(value: object) -> object:
    return None if isinstance(value, str) and not value.strip() else value


#: A number that may be left blank (None).
Number = Annotated[float | None, BeforeValidator(_blank_is_none)]


def text(max_length: int) -> Any:
    """A text of at most `max_length` characters that may be left blank (None)."""
    return Annotated[Annotated[str, Field(max_length=max_length)] | None, BeforeValidator(_blank_is_none)]


def hit_filter(fmin: Annotated[Number, Query(description="MHz")] = None,
               fmax: Annotated[Number, Query(description="MHz")] = None,
               min_snr: Annotated[Number, Query(description="hits with an SNR at least this")] = None,
               min_statistic: Annotated[Number, Query(description="hits with a statistic at least this")] = None,
               drift_min: Annotated[Number, Query(description="Hz/s")] = None,
               drift_max: Annotated[Number, Query(description="Hz/s")] = None) -> HitFilter:
    """FastAPI dependency: the hit filter of a request (inclusive bounds; with both strength bounds,
    a hit meeting either qualifies)."""
    return HitFilter(fmin, fmax, min_snr, min_statistic, drift_min, drift_max)
