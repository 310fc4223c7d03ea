"""tenantry.backoff: the delays tenacity's exponential wait gives, as loops ask for them."""

from __future__ import annotations

from tenantry.backoff import Backoff


def test_the_delay_doubles_from_the_first_up_to_the_cap() -> None:
    schedule = Backoff(first=5, cap=300)
    assert [schedule.delay(n) for n in range(1, 9)] == [5, 10, 20, 40, 80, 160, 300, 300]


def test_a_cap_that_is_not_a_doubling_is_reached_exactly() -> None:
    schedule = Backoff(first=1, cap=15)
    assert [schedule.delay(n) for n in range(1, 7)] == [1, 2, 4, 8, 15, 15]
    assert schedule.delay(0) == 1  # no failure yet counts as the first
