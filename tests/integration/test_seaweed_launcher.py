"""SeaweedFS servers the launcher starts are the same on every machine: every port a
server listens on is one its launcher chose, and its volume budget is fixed.

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


def test_a_small_disk_still_holds_many_buckets(tmp_path: Path) -> None:
    """`weed mini` left to itself allows free disk / volume size volumes, one or more per
    bucket: with little disk free (4.5 GiB on a 252 GiB disk, in CI) the fifth bucket's
    PutObject failed with InternalError. On a 300 MiB disk it would allow 4. The launcher
    fixes the budget, so 20 buckets with an object each fit there."""
    disk = tmp_path / "disk"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=300m", "tenantry-test", disk], check=True)
    try:
        server = SeaweedS3.start(disk / "s3", access_key_id="k", secret_access_key="s" * 20)
        try:
            s3 = server.client(timeout=10)
            for i in range(20):
                s3.create_bucket(Bucket=f"bucket-{i}")
                s3.put_object(Bucket=f"bucket-{i}", Key="object", Body=b"x" * 100_000)
            assert {b["Name"] for b in s3.list_buckets()["Buckets"]} == {
                f"bucket-{i}" for i in range(20)
            }
            got = s3.get_object(Bucket="bucket-19", Key="object")["Body"].read()
            assert got == b"x" * 100_000
        finally:
            server.stop()
    finally:
        subprocess.run(["umount", disk], check=True)
