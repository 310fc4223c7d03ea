"""ClickHouse hosts for the backup and restore jobs' tests, and the job's container env.

Each host is ``tenantry_dev.loopback_server`` over chDB in its own process and data
directory (started here, stopped by PID by the caller). ``resolve_env`` gives a rendered
container's environment as the kubelet would, every ``secretKeyRef`` resolved against
the Secrets' data the operator creates; ``run_container`` runs the container's own
command with it, host names mapped to loopback ports by the test-only resolver
(``tests/support/resolver``).
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tenantry.clickhouse import open_client
from tenantry_dev.services import free_port
from tests.support.wait import eventually, scaled

RESOLVER = Path(__file__).resolve().parent / "resolver"


@dataclass
class Host:
    name: str
    port: int
    proc: subprocess.Popen[bytes] | None  # None: nothing listens (a host that is down)


def decoded(secret: Mapping[str, Any]) -> dict[str, str]:
    return {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}


def resolve_env(
    container: Mapping[str, Any], secret_data: Mapping[str, Mapping[str, str]]
) -> dict[str, str]:
    """The container's env as the kubelet would give it (values and secretKeyRefs)."""
    out = {}
    for item in container["env"]:
        if "value" in item:
            out[item["name"]] = item["value"]
            continue
        ref = item["valueFrom"]["secretKeyRef"]
        value = secret_data.get(ref["name"], {}).get(ref["key"])
        if value is None:
            assert ref.get("optional"), f"{item['name']}: Secret {ref['name']} lacks {ref['key']}"
            continue
        out[item["name"]] = value
    return out


def run_container(
    container: Mapping[str, Any],
    secret_data: Mapping[str, Mapping[str, str]],
    *,
    resolve: Mapping[str, str],
) -> subprocess.CompletedProcess[str]:
    """The container's command with its resolved env, as a subprocess; ``resolve`` maps
    host names to ``127.0.0.1:<port>``."""
    env = resolve_env(container, secret_data)
    env.update(
        {
            "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
            "PYTHONPATH": str(RESOLVER),
            "TENANTRY_TEST_RESOLVE": json.dumps(dict(resolve)),
        }
    )
    return subprocess.run(
        list(container["command"]) + list(container.get("args", [])),
        env=env,
        capture_output=True,
        text=True,
        timeout=scaled(180),
        check=False,
    )


def start_host(directory: Path, password: str, *, config: Path | None = None) -> Host:
    """A loopback ClickHouse server with user ``admin`` (and ``config``, a server config
    file, if given), answering when this returns."""
    port = free_port()
    log = (directory / "server.log").open("wb")
    extra = ["--config-file", str(config)] if config is not None else []
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tenantry_dev.loopback_server",
            "--path",
            str(directory / "data"),
            "--port",
            str(port),
            "--user",
            "admin",
            f"--password={password}",  # one argument even when it starts with "-"
            *extra,
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    log.close()
    host = Host("", port, proc)

    def answering() -> bool:
        if proc.poll() is not None:
            raise RuntimeError((directory / "server.log").read_text()[-2000:])
        open_client(f"http://admin:{password}@127.0.0.1:{port}/").close()
        return True

    eventually(answering, what="loopback ClickHouse answering", timeout=120, ignore=(Exception,))
    return host
