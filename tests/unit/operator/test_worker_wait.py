"""How long a tenant's worker sleeps between reconciles (worker.next_wait): the schema
step that ClickHouse refused is retried within seconds, not at the busy recheck."""

from __future__ import annotations

from tenantry_operator.reconcile import Outcome
from tenantry_operator.settings import Settings
from tenantry_operator.worker import next_wait

SETTINGS = Settings(resync_seconds=300, busy_recheck_seconds=30, retry_max_seconds=15)


def outcome(*, converged: bool = False, retry: bool = False) -> Outcome:
    return Outcome(status={}, converged=converged, events=[], retry=retry)


def test_a_refused_schema_step_is_retried_with_a_backoff_that_doubles_to_a_cap() -> None:
    backoff = SETTINGS.retry_first_seconds
    delays = []
    for _ in range(7):
        delay, backoff = next_wait(outcome(retry=True), SETTINGS, backoff)
        delays.append(delay)
    assert delays == [1, 2, 4, 8, 15, 15, 15]
    # Two refusals now cost 3 s before the third attempt; they cost 60 s with the
    # busy recheck, the whole of a test's wait for Ready.
    assert sum(delays[:2]) < SETTINGS.busy_recheck_seconds


def test_any_other_outcome_starts_the_backoff_again() -> None:
    _, backoff = next_wait(outcome(retry=True), SETTINGS, 8.0)
    assert backoff == 15
    delay, backoff = next_wait(outcome(), SETTINGS, backoff)
    assert (delay, backoff) == (30, 1)  # converging: watches drive it, a safety net
    delay, backoff = next_wait(outcome(converged=True), SETTINGS, 15.0)
    assert (delay, backoff) == (300, 1)  # converged: the resync


def test_the_retry_never_waits_longer_than_the_busy_recheck() -> None:
    quick = Settings(busy_recheck_seconds=5, retry_max_seconds=60)
    assert next_wait(outcome(retry=True), quick, 40.0)[0] == 5
