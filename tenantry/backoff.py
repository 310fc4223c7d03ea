"""Backoff schedules, from tenacity, for loops that do their own waiting.

Most retries go through ``tenacity.AsyncRetrying`` directly. A few loops cannot hand
their waiting to it: the operator's per-tenant worker sleeps until a watch event wakes
it or the delay passes, and kopf itself sleeps before calling a handler again (the
handler only names the delay, ``kopf.TemporaryError(delay=...)``). They take their
delays from a ``Backoff``: tenacity's exponential wait, asked for the delay after the
n-th failure in a row, instead of a formula of their own.
"""

from __future__ import annotations

import tenacity


class Backoff:
    """``first`` seconds after the first failure, doubling up to ``cap``."""

    def __init__(self, *, first: float, cap: float) -> None:
        self.first = first
        self.cap = cap
        self._wait = tenacity.wait_exponential(multiplier=first, max=cap)

    def delay(self, failures: int) -> float:
        """The wait after the ``failures``-th failure in a row (1 for the first)."""
        state = tenacity.RetryCallState(tenacity.AsyncRetrying(), None, (), {})
        state.attempt_number = max(failures, 1)
        return float(self._wait(state))
