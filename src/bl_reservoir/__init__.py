"""bl-reservoir: SETI narrowband searches over Breakthrough Listen data, and BL@Scale to run them.

Importing the package stays cheap: heavy modules (numpy kernels, Dask, the web app) load on use.
"""

from bl_reservoir.errors import InvalidObservation, ReservoirError

__version__ = "0.1.0"

__all__ = ["InvalidObservation", "ReservoirError", "__version__"]
