"""Shared input constraints.

PostgreSQL text cannot hold NUL, and control characters are never legitimate in names,
so every free-text field uses one of these types: bad input is a precise 422 at the
edge instead of a database error in the middle of a transaction.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import StringConstraints

PRINTABLE = r"^[^\x00-\x1f\x7f]*$"

Name = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=PRINTABLE)]
"""A display name: 1 to 200 printable characters."""
OptionalName = Annotated[str, StringConstraints(max_length=200, pattern=PRINTABLE)]
"""A display name that may be empty."""
Description = Annotated[str, StringConstraints(max_length=500, pattern=PRINTABLE)]
"""A short free-text description."""
