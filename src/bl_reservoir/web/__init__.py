"""BL@Scale's web front end: the JSON API of contract C7 and the pages researchers browse results with.

`create_app(bucket=None, db=None, token=None, auth_read=False)` builds the FastAPI app;
`bl-reservoir serve` runs it under uvicorn.
"""

from bl_reservoir.web.app import create_app

__all__ = ["create_app"]
