"""``python -m tenantry_cli``: the ``tenantry`` command without its console script."""

from __future__ import annotations

import sys

from tenantry_cli.main import main

sys.exit(main())
