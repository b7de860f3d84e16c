"""Taylor-tree de-Doppler drift search (turboSETI-class) and ON/OFF cadence events.

`python -m bl_reservoir.dedoppler.search IN [OUT]` runs the search on one observation (contract C1).
"""

from __future__ import annotations

from bl_reservoir.dedoppler._hits import hit_search
from bl_reservoir.dedoppler._taylor import taylor_path, taylor_tree
from bl_reservoir.dedoppler.driver import (
    DriftGrid,
    SearchParameters,
    search_block,
    search_observation,
)

__all__ = [
    "DriftGrid",
    "SearchParameters",
    "hit_search",
    "search_block",
    "search_observation",
    "taylor_path",
    "taylor_tree",
]
