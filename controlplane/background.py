"""Background tasks that stop when told, and shutdown steps that end.

The app runs long-lived loops beside its requests (the access cache's LISTEN
connection, the session cache's Redis subscription, the Kubernetes mirrors) and stops
them at shutdown. Two things make a plain ``task.cancel(); await task`` unsafe there:

- On Python 3.11 ``asyncio.wait_for`` loses a cancellation that arrives in the same
  turn of the event loop as the operation it waits for completes (CPython gh-86296,
  fixed in 3.12): it returns the result instead of raising ``CancelledError``. Libraries
  call it on hot paths: redis-py wraps every command it sends in
  ``wait_for(..., socket_timeout)``. A loop cancelled at that moment carries on as if
  nothing happened, and ``await task`` waits forever (on a loaded machine the moment
  is easy to hit: the loop runs many ready callbacks in one turn after a long step).
  The cancellation is still counted (``Task.cancelling()``), so a loop can notice it:
  ``check_cancelled()`` at each turn turns a lost cancellation back into
  ``CancelledError``.
- Closing a pool or a client waits for the other side (asyncpg's ``Pool.close`` waits
  for every connection to be released, with no limit). ``bounded`` gives such a step a
  deadline and moves on.

``stop(task, within=...)`` cancels a task, and again every ``RECANCEL_SECONDS`` while it
runs, for at most ``within`` seconds; it never waits longer than that.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import Any

log = logging.getLogger("tenantry.controlplane.shutdown")
RECANCEL_SECONDS = 0.25


def check_cancelled() -> None:
    """Raise ``CancelledError`` if the current task was asked to stop but carries on
    (a library swallowed the cancellation); call it at each turn of a long loop."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


async def stop(task: asyncio.Task[Any], *, within: float, what: str) -> bool:
    """Cancel ``task`` and wait for it to end, for at most ``within`` seconds.

    Re-sends the cancellation while the task runs (one may be lost, see above). Returns
    whether it ended; a task that did not is logged and left behind."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not task.done():
        left = deadline - loop.time()
        if left <= 0:
            log.warning("%s did not stop within %.1f s; left behind", what, within)
            return False
        task.cancel()
        await asyncio.wait({task}, timeout=min(left, RECANCEL_SECONDS))
    if not task.cancelled() and task.exception() is not None:
        log.warning("%s ended with %s", what, type(task.exception()).__name__)
    return True


async def bounded(step: Awaitable[Any], *, within: float, what: str) -> bool:
    """Run a shutdown step for at most ``within`` seconds; returns whether it finished.

    A step that overruns is cancelled (``stop``, with a short grace), logged and left
    behind: shutdown goes on either way. A step that fails is logged too."""
    task = asyncio.ensure_future(step)
    done, _ = await asyncio.wait({task}, timeout=within)
    if not done:
        log.warning("%s took over %.1f s; cancelled", what, within)
        await stop(task, within=min(within, 1.0), what=what)
        return False
    if not task.cancelled() and task.exception() is not None:
        log.warning("%s failed: %s", what, type(task.exception()).__name__)
        return False
    return True
