"""Test-only name resolution for subprocesses: cluster host names to loopback ports.

A stand-in for cluster DNS, never part of the product: the backup job's test runs the
CronJob's own command with this directory first on PYTHONPATH, so Python loads this
module at start-up. ``TENANTRY_TEST_RESOLVE`` maps host names to ``127.0.0.1:<port>``
(the loopback ClickHouse servers standing in for each host's Service); every other
name that is not a loopback address fails to resolve, so nothing can leave the machine.
Without the variable the module does nothing.
"""

from __future__ import annotations

import json
import os
import socket
from typing import Any

_MAP: dict[str, str] = json.loads(os.environ.get("TENANTRY_TEST_RESOLVE") or "{}")
_LOCAL = {"localhost", "127.0.0.1", "::1"}

if _MAP:
    _real = socket.getaddrinfo

    def _getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else host
        if name in _MAP:
            address, _, mapped = _MAP[name].rpartition(":")
            return _real(address, int(mapped), *args, **kwargs)
        if name is None or name in _LOCAL or str(name).startswith("127."):
            return _real(host, port, *args, **kwargs)
        raise socket.gaierror(socket.EAI_NONAME, f"test resolver: unknown host {name}")

    socket.getaddrinfo = _getaddrinfo
