"""Shutdown that ends (controlplane/background.py): a cancellation lost in a library still
stops a loop, and no shutdown step waits past its deadline."""

from __future__ import annotations

import asyncio
import logging
import sys
import time

import pytest

from controlplane import background


async def _lose_a_cancellation(task_started: asyncio.Event, done: asyncio.Event) -> None:
    """What redis-py's sends do on Python 3.11: asyncio.wait_for returns the result of
    an operation that completed in the same turn as the cancel, and drops the cancel."""
    task_started.set()
    await asyncio.wait_for(done.wait(), 10)


async def test_a_cancellation_can_be_lost_in_wait_for() -> None:
    """The premise, shown on this interpreter (it is why background.py exists); on
    Python 3.12+ wait_for keeps the cancellation and the loop ends on its own."""
    started, done = asyncio.Event(), asyncio.Event()

    async def loop() -> int:
        await _lose_a_cancellation(started, done)
        turns = 0
        while turns < 50:  # a loop that relies on CancelledError alone
            turns += 1
            await asyncio.sleep(0.001)
        return turns

    task = asyncio.create_task(loop())
    await started.wait()
    done.set()
    task.cancel()
    await asyncio.wait({task}, timeout=5)
    if sys.version_info < (3, 12):
        assert task.result() == 50  # carried on to the end: the cancel was lost
        assert task.cancelling() == 1  # ...but it is still counted
    else:
        assert task.cancelled()


async def test_a_loop_that_checks_stops_after_a_lost_cancellation() -> None:
    started, done = asyncio.Event(), asyncio.Event()
    turns = 0

    async def loop() -> None:
        nonlocal turns
        await _lose_a_cancellation(started, done)
        while True:
            background.check_cancelled()
            turns += 1
            await asyncio.sleep(0.001)

    task = asyncio.create_task(loop())
    await started.wait()
    done.set()
    task.cancel()
    await asyncio.wait({task}, timeout=5)
    assert task.cancelled()
    assert turns == 0


async def test_check_cancelled_is_silent_in_a_task_nobody_cancelled() -> None:
    background.check_cancelled()
    async with asyncio.timeout(5):
        await asyncio.sleep(0)  # a timeout that did not fire leaves no trace either
    background.check_cancelled()
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.001):
            await asyncio.sleep(1)
    background.check_cancelled()  # nor does one that fired and was handled


async def test_stop_sends_the_cancellation_again_until_the_task_ends() -> None:
    started, done = asyncio.Event(), asyncio.Event()

    async def loop() -> None:  # does not check: relies on being cancelled again
        await _lose_a_cancellation(started, done)
        while True:  # noqa: ASYNC110 - a loop that waits on nothing but time
            await asyncio.sleep(0.01)

    task = asyncio.create_task(loop())
    await started.wait()
    done.set()
    task.cancel()  # the first one is lost...
    await asyncio.sleep(0)
    start = time.monotonic()
    assert await background.stop(task, within=5, what="loop")  # ...stop() sends more
    assert task.cancelled()
    assert time.monotonic() - start < 2


async def test_stop_gives_up_at_its_deadline(caplog: pytest.LogCaptureFixture) -> None:
    release = asyncio.Event()

    async def stubborn() -> None:
        while not release.is_set():
            try:
                await asyncio.sleep(1)
            except asyncio.CancelledError:
                continue  # a task that will not stop

    task = asyncio.create_task(stubborn())
    await asyncio.sleep(0)
    start = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="tenantry.controlplane.shutdown"):
        assert not await background.stop(task, within=0.3, what="stubborn task")
    assert 0.3 <= time.monotonic() - start < 2
    assert "stubborn task did not stop within 0.3 s" in caplog.text
    release.set()
    await asyncio.wait({task}, timeout=5)
    assert task.done()


async def test_bounded_moves_on_after_its_deadline(caplog: pytest.LogCaptureFixture) -> None:
    forever = asyncio.get_running_loop().create_future()  # a close that never completes
    start = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="tenantry.controlplane.shutdown"):
        assert not await background.bounded(forever, within=0.2, what="pool close")
    assert time.monotonic() - start < 2
    assert forever.cancelled()
    assert "pool close took over 0.2 s" in caplog.text


async def test_bounded_reports_a_step_that_finished_or_failed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def fine() -> None:
        await asyncio.sleep(0)

    async def broken() -> None:
        raise ConnectionResetError

    assert await background.bounded(fine(), within=5, what="fine")
    with caplog.at_level(logging.WARNING, logger="tenantry.controlplane.shutdown"):
        assert not await background.bounded(broken(), within=5, what="redis close")
    assert "redis close failed: ConnectionResetError" in caplog.text
