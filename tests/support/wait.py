"""Every wait in the integration and e2e tests: one helper, one scale factor.

A test that waits for something to become true (a pod Ready, a cache invalidated, a
process answering) polls it with ``eventually`` (in sync code) or ``until`` (in async
code), and a wait handed to something else (``kubectl --timeout``, ``Popen.wait``, a
launcher's start-up deadline) takes its seconds from ``scaled`` (``kubectl_timeout``
formats one for kubectl and helm). What a test starts it stops with a deadline:
``stop_process`` (SIGTERM, wait, SIGKILL, by PID) and ``stop_task`` (cancel, wait).
Nothing else in tests/ sleeps in a loop or picks its own small deadline.

The ceilings are generous on purpose: a wait returns as soon as its condition holds,
so a long ceiling costs nothing when things work, and only decides how long a broken
run takes to say so. They are chosen so that the whole suite holds on a loaded 2-core
machine (CI, with other work running) at scale 1.

``TENANTRY_TEST_TIMEOUT_SCALE`` (a float, default 1.0) multiplies every ceiling, and
pytest-timeout's per-test limit with them (tests/conftest.py). Raise it on a machine
slower or busier than that (``TENANTRY_TEST_TIMEOUT_SCALE=3``); lowering it only makes
a broken run fail sooner. A value that is not a positive number is refused at import,
not silently ignored. pytest prints the value in use in its header.

On timeout both helpers raise ``AssertionError`` naming what was awaited, the ceiling
and the last value the check returned (or the exception it last raised), so a failure
report says what was seen: let the check return the observed state and pass the
condition as ``accept``. An exception raised by the check other than those listed in
``ignore`` fails the wait at once (so a check can stop waiting on a process that died).
"""

from __future__ import annotations

import asyncio
import inspect
import os
import subprocess
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, cast, overload

T = TypeVar("T")
ENV = "TENANTRY_TEST_TIMEOUT_SCALE"


def _scale_from(value: str | None) -> float:
    if value is None or not value.strip():
        return 1.0
    try:
        scale = float(value)
    except ValueError:
        raise ValueError(f"{ENV} must be a number, not {value!r}") from None
    if not scale > 0 or scale == float("inf"):
        raise ValueError(f"{ENV} must be a positive number, not {value!r}")
    return scale


SCALE = _scale_from(os.environ.get(ENV))


def scaled(seconds: float) -> float:
    """``seconds`` times the scale factor: every ceiling in the tests goes through this."""
    return seconds * SCALE


def _timed_out(what: str, ceiling: float, last: Any, error: BaseException | None) -> AssertionError:
    seen = f"last error: {error!r}" if error is not None else f"last: {last!r}"
    return AssertionError(f"timed out after {ceiling:g} s waiting for {what}; {seen}")


def eventually(
    check: Callable[[], T],
    *,
    what: str,
    timeout: float = 60,
    accept: Callable[[T], object] = bool,
    interval: float = 0.2,
    ignore: tuple[type[BaseException], ...] = (),
) -> T:
    """Call ``check`` until ``accept`` holds for what it returned (by default: until it
    returns something truthy), and return that value.

    ``what``: what is awaited, for the failure message; ``timeout``: the unscaled
    ceiling in seconds; ``accept``: lets ``check`` return the observed state itself
    (a status, a list), so that a timeout shows it; ``ignore``: exceptions of the check
    that mean "not yet" (any other fails the wait at once)."""
    ceiling = scaled(timeout)
    deadline = time.monotonic() + ceiling
    while True:
        last: Any = None
        error: BaseException | None = None
        try:
            last = check()
        except ignore as exc:
            error = exc
        else:
            if accept(last):
                return cast(T, last)
        if time.monotonic() >= deadline:
            raise _timed_out(what, ceiling, last, error)
        time.sleep(interval)


@overload
async def until(
    check: Callable[[], Awaitable[T]],
    *,
    what: str,
    timeout: float = ...,  # noqa: ASYNC109
    accept: Callable[[T], object] = ...,
    interval: float = ...,
    ignore: tuple[type[BaseException], ...] = ...,
) -> T: ...


@overload
async def until(
    check: Callable[[], T],
    *,
    what: str,
    timeout: float = ...,  # noqa: ASYNC109
    accept: Callable[[T], object] = ...,
    interval: float = ...,
    ignore: tuple[type[BaseException], ...] = ...,
) -> T: ...


async def until(
    check: Callable[[], Any],
    *,
    what: str,
    timeout: float = 60,  # noqa: ASYNC109 - a polling ceiling, scaled; not a cancel scope
    accept: Callable[[Any], object] = bool,
    interval: float = 0.02,
    ignore: tuple[type[BaseException], ...] = (),
) -> Any:
    """``eventually`` for async code: ``check`` may be a plain or an async function; the
    event loop runs between polls."""
    ceiling = scaled(timeout)
    deadline = time.monotonic() + ceiling
    while True:
        last: Any = None
        error: BaseException | None = None
        try:
            last = check()
            if inspect.isawaitable(last):
                last = await last
        except ignore as exc:
            error = exc
        else:
            if accept(last):
                return last
        if time.monotonic() >= deadline:
            raise _timed_out(what, ceiling, last, error)
        await asyncio.sleep(interval)


def kubectl_timeout(seconds: float) -> str:
    """A scaled ``--timeout`` value for kubectl and helm (whole seconds)."""
    return f"{max(1, round(scaled(seconds)))}s"


def stop_process(proc: subprocess.Popen[Any], *, grace: float = 20, what: str = "process") -> int:
    """Stop a child by its PID: SIGTERM, wait up to ``grace`` (scaled) seconds, then
    SIGKILL and reap it. Returns its exit status; safe on a process that already ended."""
    if proc.poll() is None:
        proc.terminate()
        try:
            return proc.wait(timeout=scaled(grace))
        except subprocess.TimeoutExpired:
            proc.kill()
    try:
        return proc.wait(timeout=scaled(grace))
    except subprocess.TimeoutExpired:  # unkillable (D state): say so instead of hanging
        raise AssertionError(f"{what} (pid {proc.pid}) did not die after SIGKILL") from None


async def stop_task(
    task: asyncio.Task[Any],
    *,
    what: str,
    timeout: float = 30,  # noqa: ASYNC109 - a scaled ceiling, as in until
) -> None:
    """Cancel a task a test started and wait until it ended, at most ``timeout`` (scaled)
    seconds. The cancellation is sent again while it runs: on Python 3.11 a library's
    ``asyncio.wait_for`` can lose one (controlplane/background.py)."""
    ceiling = scaled(timeout)
    deadline = time.monotonic() + ceiling
    while not task.done():
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what} did not stop within {ceiling:g} s of its cancel")
        task.cancel()
        await asyncio.wait({task}, timeout=0.25)
    if not task.cancelled():
        task.exception()  # retrieved: a task that failed is the test's to assert on
