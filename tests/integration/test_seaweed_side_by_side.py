"""Every port a SeaweedFS server listens on is one its launcher chose.

`weed mini` also opens an Iceberg catalog (8181), a Lance namespace (9101) and an admin
server on fixed default ports, falling back to another port when one looks taken. Two
servers starting at the same moment (the suite's session S3 and `make dev`'s, as
tests/e2e/test_dev_stack.py runs them) both saw 8181 free, and the second died on
"address already in use" (seen in CI). The launcher turns those listeners off and gives
the admin server a free port, so no two servers can race for a port."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from tenantry_dev.services import SeaweedS3


def listening(pid: int) -> set[int]:
    out = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True, check=True).stdout
    return {
        int(line.split()[3].rsplit(":", 1)[1])
        for line in out.splitlines()
        if re.search(rf"pid={pid},", line)
    }


def test_every_listener_is_on_a_port_the_launcher_chose(tmp_path: Path) -> None:
    server = SeaweedS3.start(tmp_path, access_key_id="k", secret_access_key="s" * 20)
    try:
        chosen = {p + offset for p in server.ports.values() for offset in (0, 10000)}
        ports = listening(server.process.pid)
        assert server.ports["s3"] in ports
        assert ports <= chosen, f"listening outside the chosen ports: {sorted(ports - chosen)}"
    finally:
        server.stop()
