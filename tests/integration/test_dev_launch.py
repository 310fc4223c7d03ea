"""`tenantry_dev.services.await_start`, the start-up wait every launcher shares, on real
child processes: one that answers, one that dies, one that never answers. In each
failure the child is gone afterwards and the error says why, with its log."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tenantry_dev.services import await_start


def _child(code: str, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen([sys.executable, "-c", code], stdout=out, stderr=subprocess.STDOUT)


def test_returns_once_the_check_passes(tmp_path: Path) -> None:
    marker = tmp_path / "up"
    proc = _child(
        f"import pathlib, time; pathlib.Path({str(marker)!r}).touch(); time.sleep(60)",
        tmp_path / "log",
    )
    try:
        await_start(proc, marker.exists, what="child", timeout=30, interval=0.05)
        assert proc.poll() is None  # still running: the caller owns it now
    finally:
        proc.kill()
        proc.wait()


def test_a_child_that_dies_is_reported_with_its_log(tmp_path: Path) -> None:
    log = tmp_path / "log"
    proc = _child("print('bad config: port is not a number'); raise SystemExit(3)", log)
    with pytest.raises(RuntimeError) as failure:
        await_start(proc, lambda: False, what="child", timeout=30, interval=0.05, log=log)
    assert "child exited" in str(failure.value)
    assert "bad config: port is not a number" in str(failure.value)
    assert proc.returncode == 3


def test_a_child_that_never_answers_is_stopped(tmp_path: Path) -> None:
    proc = _child("import time; time.sleep(600)", tmp_path / "log")
    stopped: list[bool] = []

    def stop() -> None:
        stopped.append(True)
        proc.terminate()
        proc.wait()

    with pytest.raises(RuntimeError, match=r"child did not answer in 0.3 s"):
        await_start(proc, lambda: False, what="child", timeout=0.3, interval=0.05, stop=stop)
    assert stopped == [True]
    assert proc.poll() is not None
