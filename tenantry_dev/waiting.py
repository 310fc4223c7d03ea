"""The dev harness's one way to wait for something to come up (tenacity).

Starting PostgreSQL, Redis, the control plane or the local cluster means polling until
it answers, and giving up early when the process it depends on has died (waiting out the
timeout then would only hide the cause). ``until`` is that loop, on tenacity's
stop/wait/retry policies rather than a hand-written deadline loop in each launcher.
"""

from __future__ import annotations

from collections.abc import Callable

import tenacity


class Gone(RuntimeError):
    """What was awaited cannot come any more: its process exited."""


def until(
    check: Callable[[], bool],
    *,
    timeout: float,
    interval: float,
    gone: Callable[[], str | None] = lambda: None,
) -> bool:
    """Call ``check`` every ``interval`` seconds until it returns True (then True) or
    ``timeout`` seconds have passed (then False). ``OSError`` from ``check`` counts as
    "not yet" (a port not listening, a file not written). ``gone`` is asked after every
    miss: a reason (e.g. "redis-server exited") raises `Gone` at once."""

    def attempt() -> bool:
        try:
            if check():
                return True
        except OSError:
            pass
        reason = gone()
        if reason is not None:
            raise Gone(reason)
        return False

    retrying = tenacity.Retrying(
        stop=tenacity.stop_after_delay(timeout),
        wait=tenacity.wait_fixed(interval),
        retry=tenacity.retry_if_result(lambda ready: ready is False),
        retry_error_callback=lambda _state: False,
        reraise=True,
    )
    return bool(retrying(attempt))
