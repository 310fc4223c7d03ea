"""Path parameters shared by several routers (web layer: FastAPI's ``Path``).

The wire models (``*/schemas.py``) stay free of FastAPI, since services use them too;
what only a route's path needs lives here or in its router.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Path

from controlplane.tenants.schemas import NAME_PATTERN

# A tenant's or dashboard's name in the path: the same rule as ``tenants.schemas.Name``.
NamePath = Annotated[str, Path(min_length=1, max_length=29, pattern=NAME_PATTERN)]
