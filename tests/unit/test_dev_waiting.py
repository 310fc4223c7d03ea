"""The dev harness's wait loop (tenantry_dev.waiting)."""

from __future__ import annotations

import itertools

import pytest

from tenantry_dev.waiting import Gone, until


def test_returns_true_once_the_check_holds_and_retries_oserror() -> None:
    answers: list[bool | OSError] = [OSError("refused"), False, True]

    def check() -> bool:
        answer = answers.pop(0)
        if isinstance(answer, OSError):
            raise answer
        return answer

    assert until(check, timeout=5, interval=0.001) is True


def test_returns_false_after_the_timeout() -> None:
    calls = itertools.count()
    assert until(lambda: next(calls) < 0, timeout=0.05, interval=0.01) is False
    assert next(calls) >= 2  # it kept trying until then


def test_a_dead_process_ends_the_wait_at_once() -> None:
    with pytest.raises(Gone, match="exited"):
        until(lambda: False, timeout=60, interval=0.001, gone=lambda: "postgres exited")


def test_other_errors_are_not_swallowed() -> None:
    def check() -> bool:
        raise ValueError("bug")

    with pytest.raises(ValueError, match="bug"):
        until(check, timeout=5, interval=0.001)
