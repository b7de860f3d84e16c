"""Plain JSON values of what headers and manifests hold. `to_jsonable` also travels as source into an
algorithm's own interpreter (`pickles`), so it uses numpy and the standard library only."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np


def to_jsonable(value: Any) -> Any:
    """Plain JSON types for headers and manifests (numpy scalars, bytes, paths, NaN -> None)."""
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if hasattr(value, "to_value"):  # astropy Angle/Quantity (blimpy's header): an ndarray subclass, so first
        return to_jsonable(value.to_value())
    if isinstance(value, (list, tuple, np.ndarray)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bytes):
        return value.decode("ascii", errors="replace")
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)
