"""The tests' one wait helper (tests/support/wait.py): it returns as soon as the condition
holds, fails naming what it awaited and what it last saw, and every ceiling scales."""

from __future__ import annotations

import subprocess
import sys
import time
from typing import Any

import pytest

from tests.support import wait


def test_returns_the_first_truthy_value_without_waiting_out_the_ceiling() -> None:
    answers = iter([None, 0, "", {"phase": "Ready"}])
    start = time.monotonic()
    found = wait.eventually(lambda: next(answers), what="ready", timeout=60, interval=0.01)
    assert found == {"phase": "Ready"}
    assert time.monotonic() - start < 5


def test_times_out_naming_what_was_awaited_and_the_last_value() -> None:
    phases = iter(["Pending", "Provisioning"] + ["Degraded"] * 100_000)
    with pytest.raises(AssertionError) as failure:
        wait.eventually(
            lambda: {"phase": next(phases)},
            accept=lambda st: st["phase"] == "Ready",
            what="tenant t1 Ready",
            timeout=0.2,
            interval=0.01,
        )
    assert str(failure.value) == (
        f"timed out after {wait.scaled(0.2):g} s waiting for tenant t1 Ready; "
        "last: {'phase': 'Degraded'}"
    )


def test_accept_returns_the_observed_value_once_it_holds() -> None:
    counts = iter(range(100))
    assert (
        wait.eventually(
            lambda: next(counts), accept=lambda n: n >= 3, what="3 replicas", interval=0.001
        )
        == 3
    )


def test_listed_exceptions_mean_not_yet_and_are_reported_others_fail_at_once() -> None:
    calls = 0

    def refused() -> bool:
        nonlocal calls
        calls += 1
        raise ConnectionRefusedError(111, "Connection refused")

    with pytest.raises(AssertionError, match="last error: ConnectionRefusedError"):
        wait.eventually(
            refused, what="port open", timeout=0.2, interval=0.01, ignore=(ConnectionError,)
        )
    assert calls > 1

    calls = 0
    with pytest.raises(ConnectionRefusedError):
        wait.eventually(refused, what="port open", timeout=30, interval=0.01)
    assert calls == 1


def test_every_ceiling_is_scaled(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(wait, "SCALE", 3.0)
    assert wait.scaled(20) == 60
    assert wait.kubectl_timeout(20) == "60s"
    start = time.monotonic()
    with pytest.raises(AssertionError, match=r"after 0\.3 s waiting for never"):
        wait.eventually(lambda: False, what="never", timeout=0.1, interval=0.01)
    assert time.monotonic() - start >= 0.3


@pytest.mark.parametrize(
    ("value", "scale"), [(None, 1.0), ("", 1.0), ("1", 1.0), ("2.5", 2.5), (" 4 ", 4.0)]
)
def test_scale_from_the_environment(value: str | None, scale: float) -> None:
    assert wait._scale_from(value) == scale


@pytest.mark.parametrize("value", ["fast", "0", "-1", "nan", "inf"])
def test_a_scale_that_is_not_a_positive_number_is_refused(value: str) -> None:
    with pytest.raises(ValueError, match=wait.ENV):
        wait._scale_from(value)


async def test_until_awaits_async_checks_and_fails_the_same_way(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    polls = 0

    async def drained() -> int:
        nonlocal polls
        polls += 1
        return polls if polls >= 3 else 0

    assert await wait.until(drained, what="drained", timeout=60, interval=0.001) == 3
    assert await wait.until(lambda: "sync", what="a plain check", timeout=1) == "sync"

    async def backlog() -> dict[str, Any]:
        return {"pending": 7}

    monkeypatch.setattr(wait, "SCALE", 2.0)
    with pytest.raises(
        AssertionError, match=r"after 0\.2 s waiting for drained; last: \{'pending': 7\}"
    ):
        await wait.until(backlog, accept=lambda b: b["pending"] == 0, what="drained", timeout=0.1)


def test_stop_process_terminates_then_kills_by_pid() -> None:
    polite = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    assert wait.stop_process(polite, what="sleeper") == -15
    stubborn = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN);"
            " print('ready', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
    )
    assert stubborn.stdout is not None
    assert stubborn.stdout.readline() == b"ready\n"  # SIGTERM is ignored from here on
    start = time.monotonic()
    assert wait.stop_process(stubborn, grace=0.5, what="stubborn") == -9
    assert time.monotonic() - start < wait.scaled(0.5) * 2 + 5
    stubborn.stdout.close()
    assert wait.stop_process(stubborn) == -9  # already reaped: nothing to do
