"""``kubectl port-forward`` to a Service, as a platform admin reaches a cluster's insides
from their machine: the local end on loopback (a free port kubectl picks), the process
stopped by its PID when done."""

from __future__ import annotations

import re
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from tests.support.kube import Kube
from tests.support.wait import scaled, stop_process

FORWARDING = re.compile(r"Forwarding from 127\.0\.0\.1:(\d+) ->")


@contextmanager
def forward(
    kube: Kube, namespace: str, service: str, port: int, *, kind: str = "svc"
) -> Iterator[str]:
    """``http://127.0.0.1:<local>`` forwarded to ``service``'s ``port`` in ``namespace``
    (``kind="pod"``: to that one pod)."""
    proc = subprocess.Popen(
        [
            str(kube.kubectl),
            "port-forward",
            "--address",
            "127.0.0.1",
            "-n",
            namespace,
            f"{kind}/{service}",
            f":{port}",
        ],
        env=kube.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    found: list[int] = []
    lines: list[str] = []
    ready = threading.Event()

    def read() -> None:  # drains the pipe for the process's whole life
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            match = FORWARDING.search(line)
            if match and not found:
                found.append(int(match.group(1)))
                ready.set()
        ready.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        ready.wait(timeout=scaled(60))
        if not found:
            raise AssertionError(f"port-forward to {namespace}/{service}:{port}: {''.join(lines)}")
        yield f"http://127.0.0.1:{found[0]}"
    finally:
        stop_process(proc, grace=10, what=f"port-forward {service}")
        reader.join(timeout=scaled(10))
