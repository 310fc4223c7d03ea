"""The test-only stand-in for cluster DNS (tests/support/resolver/sitecustomize.py), as
the backup job's test loads it into a subprocess: mapped names reach their loopback
port, loopback stays loopback, and every other name fails without asking any DNS."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.support.wait import scaled

RESOLVER = Path(__file__).resolve().parents[1] / "support" / "resolver"
# The unmapped name is looked up only once the mapped one proved the resolver loaded:
# without it that lookup would ask the machine's DNS, and tests talk to loopback only.
PROBE = """
import json, os, socket
def first(host, port):
    try:
        return list(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][4][:2])
    except socket.gaierror as err:
        return str(err)
mapped = first("ch-s0-r0.tenant-a.svc.cluster.local", 8123)
seen = [mapped, first("127.0.0.1", 9000)]
if mapped == ["127.0.0.1", int(os.environ["EXPECTED_PORT"])]:
    seen.append(first("s3.amazonaws.com", 443))
print(json.dumps(seen))
"""


def _probe(mapping: dict[str, str], expected_port: int) -> list[object]:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(RESOLVER),
        "TENANTRY_TEST_RESOLVE": json.dumps(mapping),
        "EXPECTED_PORT": str(expected_port),
    }
    out = subprocess.run(
        [sys.executable, "-c", PROBE],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=scaled(60),
    )
    result: list[object] = json.loads(out.stdout)
    return result


def test_mapped_names_reach_loopback_and_others_fail() -> None:
    seen = _probe({"ch-s0-r0.tenant-a.svc.cluster.local": "127.0.0.1:41234"}, 41234)
    assert seen[0] == ["127.0.0.1", 41234]  # the port is the mapped one, not 8123
    assert seen[1] == ["127.0.0.1", 9000]
    assert len(seen) == 3
    assert "test resolver: unknown host s3.amazonaws.com" in str(seen[2])
