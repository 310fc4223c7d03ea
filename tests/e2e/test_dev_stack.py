"""`make dev` (``python -m tenantry_dev dev``) runs S3 and gives the examples working
backup targets: the sharded example gets its bucket, the backup Secret and CronJob,
``status.backup`` and ``BackupHealthy``, and no ``BackupNotConfigured``.

The whole dev stack runs here as `make dev` starts it, on its own state directory and
free ports (its own local cluster, PostgreSQL, Redis, SeaweedFS, chDB, control plane
and operator), and is stopped by its PID (SIGINT, as Ctrl-C), then its cluster too.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tenantry_dev.services import free_port
from tenantry_dev.stack import CONSOLE_CLIENT_ID, CONSOLE_DIR
from tests.support.kube import Kube
from tests.support.seaweed import S3Server
from tests.support.wait import eventually, scaled, stop_process

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Dev:
    state: Path
    kube: Kube
    s3_endpoint: str
    log: Path


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_base() -> int:
    """A port base for the dev cluster (`Ports.fixed`: base+1 to base+6) whose ports
    are free now."""
    for _ in range(100):
        base = free_port()
        if base + 10 < 65535 and all(_bindable(base + i) for i in range(1, 7)):
            return base
    raise AssertionError("no free range of ports for the dev cluster")


@pytest.fixture(scope="module")
def dev_stack() -> Iterator[Dev]:
    from tenantry_dev import tools

    # Not under pytest's tmp_path, which is private to root: PostgreSQL runs as the
    # postgres user and must reach its folder inside the state (traverse only).
    state = Path(tempfile.mkdtemp(prefix="tenantry-dev-"))
    state.chmod(0o711)
    log = state / "dev.log"
    base = _free_base()
    env = {**os.environ, "TENANTRY_CP_METRICS_PORT": "0"}
    command = [sys.executable, "-m", "tenantry_dev", "dev", "--state-dir", str(state)]
    command += ["--port-base", str(base), "--api-port", str(free_port())]
    command += ["--operator-port", str(free_port()), "--internal-port", str(free_port())]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            command, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
    try:

        def started() -> str:
            if proc.poll() is not None:
                raise RuntimeError(f"make dev exited:\n{log.read_text()[-4000:]}")
            return log.read_text()

        text = eventually(
            started,
            accept=lambda t: "Tenantry is running locally" in t,
            timeout=300,
            what="make dev started",
        )
        match = re.search(r"S3 \(SeaweedFS\)\s+(http://127\.0\.0\.1:\d+)", text)
        assert match, text
        kubectl = tools.ensure(("kubectl",))["kubectl"]
        yield Dev(state, Kube(kubeconfig=state / "kubeconfig", kubectl=kubectl), match[1], log)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)  # as Ctrl-C: it stops what it started
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=scaled(120))
        stop_process(proc, grace=60, what="make dev")
        subprocess.run(
            [
                sys.executable,
                "-m",
                "tenantry_dev",
                "cluster",
                "destroy",
                "--state-dir",
                str(state),
                "--port-base",
                str(base),
            ],
            check=False,
            capture_output=True,
            timeout=300,
        )
        # The servers (PostgreSQL, Redis, SeaweedFS, chDB, the cluster's) name the state
        # directory in their command lines: none may outlive the stack. Any that does is
        # this test's own child's child, stopped here by its PID.
        leftovers = subprocess.run(
            ["pgrep", "-f", str(state)], capture_output=True, text=True, check=False
        ).stdout.split()
        for pid in leftovers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGKILL)
        shutil.rmtree(state, ignore_errors=True)
        assert not leftovers, f"make dev left processes behind: {leftovers}"


def test_the_examples_get_working_backup_targets(dev_stack: Dev) -> None:
    kube = dev_stack.kube
    kube.run("apply", "-f", str(REPO / "examples"))
    sharded = yaml.safe_load((REPO / "examples" / "tenant-sharded.yaml").read_text())
    name, bucket = sharded["metadata"]["name"], sharded["spec"]["backup"]["bucket"]

    def backup_condition() -> dict[str, Any]:
        obj = kube.get("tenant", name)
        conds = (obj.get("status") or {}).get("conditions") or []
        return next((c for c in conds if c["type"] == "BackupHealthy"), {})

    healthy = eventually(
        backup_condition,
        accept=lambda c: bool(c),
        timeout=120,
        what=f"{name} BackupHealthy",
    )
    assert (healthy["status"], healthy["reason"]) == ("Unknown", "NoBackupYet")
    status = kube.get("tenant", name)["status"]
    assert status["backup"] == {"count": 0}
    for cond in status["conditions"]:
        assert cond["reason"] != "BackupNotConfigured", cond
    ns = f"tenant-{name}"
    assert kube.get("cronjob", "backup", "-n", ns)["spec"]["jobTemplate"]
    assert kube.get_or_none("secret", "backup-s3-credentials", "-n", ns) is not None
    # The bucket exists on the dev S3, which checks the dev stack's own credentials.
    secret = (dev_stack.state / "s3-secret").read_text().strip()
    s3 = S3Server(dev_stack.s3_endpoint, "tenantry-dev", secret).client()
    assert bucket in [b["Name"] for b in s3.list_buckets()["Buckets"]]


def test_the_dev_stack_serves_the_console_as_a_registered_client(dev_stack: Dev) -> None:
    """`make dev`'s first line of the README: the console at the API's address, under its
    CSP, registered as the public OAuth client (its callback on this port)."""
    subprocess.run(["make", "-s", "console"], cwd=CONSOLE_DIR.parents[1], check=True)
    match = re.search(r"web console\s+(http://127\.0\.0\.1:\d+)/", dev_stack.log.read_text())
    assert match, dev_stack.log.read_text()
    base = match[1]
    with httpx.Client(base_url=base, timeout=scaled(30)) as http:
        page = http.get("/")
        assert page.status_code == 200
        assert '<div id="app">' in page.text
        assert "script-src 'self'" in page.headers["content-security-policy"]
        # A registered client and redirect URI: the credentials are checked (401), not
        # the client (an unknown one would be invalid_client, a foreign URI invalid_request).
        form = {
            "client_id": CONSOLE_CLIENT_ID,
            "redirect_uri": f"{base}/callback",
            "response_type": "code",
            "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            "code_challenge_method": "S256",
            "email": "nobody@example.com",
            "password": "not the password",
        }
        r = http.post("/v1/oauth/authorize", data=form)
        assert r.status_code == 401, r.text
        assert r.json()["error"]["code"] == "unauthenticated"
        r = http.post("/v1/oauth/authorize", data={**form, "redirect_uri": "http://evil/cb"})
        assert r.status_code == 400, r.text
