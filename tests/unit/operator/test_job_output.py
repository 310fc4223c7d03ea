"""A failed Job's own line, as the operator reads it from the pod and redacts it."""

from __future__ import annotations

from typing import Any

import pytest
from tenantry_operator import failures, job_output
from tenantry_operator.redaction import redact


def _pod(*messages: str | None) -> dict[str, Any]:
    statuses = [
        {"name": f"c{i}", "state": {"terminated": {"exitCode": 1, "message": m}}}
        for i, m in enumerate(messages)
    ]
    return {"status": {"containerStatuses": statuses}}


def test_the_last_line_of_the_termination_message_is_taken() -> None:
    pods = [_pod(None), _pod("connecting\nbackup failed: shard 1 on ch-s1-r0: refused\n")]
    assert job_output.last_line(pods) == "backup failed: shard 1 on ch-s1-r0: refused"


def test_no_pod_or_no_message_gives_none() -> None:
    assert job_output.last_line([]) is None
    assert job_output.last_line([{"status": {}}, _pod("", "   ")]) is None


def test_a_long_line_is_cut() -> None:
    line = job_output.last_line([_pod("x" * 5000)])
    assert line == "x" * job_output.LINE_LIMIT


def test_known_secrets_are_masked_as_is_and_url_quoted() -> None:
    text = "backup failed: S3 key AKIA123 secret s/e+c=r@t, url user:s%2Fe%2Bc%3Dr%40t"
    out = redact(text, ["AKIA123", "s/e+c=r@t"])
    assert "AKIA123" not in out
    assert "s/e+c=r@t" not in out
    assert "s%2Fe%2Bc%3Dr%40t" not in out
    assert out == "backup failed: S3 key *** secret ***, url user:***"


def test_the_longer_secret_is_masked_first() -> None:
    # "abc" inside "abcdef" must not leave "def" visible.
    assert redact("pw=abcdef", ["abc", "abcdef"]) == "pw=***"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "restore failed: http://admin:unknown-pw@ch-s0-r0:8123/ refused",
            "restore failed: http://admin:***@ch-s0-r0:8123/ refused",
        ),
        ("s3 https://k:v@h/b and http://u:p@x", "s3 https://k:***@h/b and http://u:***@x"),
        ("no userinfo http://host:8123/ here", "no userinfo http://host:8123/ here"),
    ],
)
def test_a_url_password_is_masked_even_when_unknown(text: str, expected: str) -> None:
    assert redact(text, []) == expected


def test_empty_secrets_mask_nothing() -> None:
    assert redact("backup failed: x", ["", ""]) == "backup failed: x"


def test_only_backup_failures_with_a_job_are_explained() -> None:
    # explain_backup_failures touches nothing for problems that are not a Job's.
    import asyncio

    other = failures.Problem("QuotaExceeded", "quota")
    no_job = failures.Problem(failures.BACKUP_FAILED, "CronJob backup failed")

    class NoKube:
        def __getattr__(self, name: str) -> Any:
            raise AssertionError(f"no API call expected, got {name}")

    out = asyncio.run(
        job_output.explain_backup_failures(
            NoKube(),  # type: ignore[arg-type]
            None,  # type: ignore[arg-type]
            None,
            [other, no_job],
            last_error=None,
        )
    )
    assert out == [other, no_job]


def test_a_stored_explanation_of_the_same_failure_is_reused_without_reading() -> None:
    import asyncio

    problem = failures.Problem(failures.BACKUP_FAILED, "Job j failed", job="j")
    stored = "Job j failed; backup failed: shard 0: boom"

    class NoKube:
        def __getattr__(self, name: str) -> Any:
            raise AssertionError(f"no API call expected, got {name}")

    [out] = asyncio.run(
        job_output.explain_backup_failures(
            NoKube(),  # type: ignore[arg-type]
            None,  # type: ignore[arg-type]
            None,
            [problem],
            last_error=stored,
        )
    )
    assert out.message == stored
    assert out.job == "j"
