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
    retries = 0
    delays = []
    for _ in range(7):
        delay, retries = next_wait(outcome(retry=True), SETTINGS, retries)
        delays.append(delay)
    assert delays == [1, 2, 4, 8, 15, 15, 15]
    # Two refusals now cost 3 s before the third attempt; they cost 60 s with the
    # busy recheck, the whole of a test's wait for Ready.
    assert sum(delays[:2]) < SETTINGS.busy_recheck_seconds


def test_any_other_outcome_starts_the_backoff_again() -> None:
    delay, retries = next_wait(outcome(retry=True), SETTINGS, 4)
    assert (delay, retries) == (15, 5)
    delay, retries = next_wait(outcome(), SETTINGS, retries)
    assert (delay, retries) == (30, 0)  # converging: watches drive it, a safety net
    assert next_wait(outcome(retry=True), SETTINGS, retries) == (1, 1)  # from 1 s again
    delay, retries = next_wait(outcome(converged=True), SETTINGS, 5)
    assert (delay, retries) == (300, 0)  # converged: the resync


def test_the_retry_never_waits_longer_than_the_busy_recheck() -> None:
    quick = Settings(busy_recheck_seconds=5, retry_max_seconds=60)
    assert next_wait(outcome(retry=True), quick, 5)[0] == 5
