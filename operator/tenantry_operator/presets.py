"""Plan presets (defined with the API, in ``tenantry.api.plans``)."""

from __future__ import annotations

from tenantry.api.plans import PRESETS, Preset, Size

__all__ = ["PRESETS", "Preset", "Size"]
