"""Cron schedules as Kubernetes CronJobs accept them, checked before a CronJob is built.

Kubernetes parses ``spec.schedule`` with robfig/cron's standard parser: five fields
(minute, hour, day of month, month, day of week) or a macro such as ``@daily``, and it
refuses a time zone inside the schedule (``TZ=``/``CRON_TZ=``; the CronJob's
``timeZone`` field says that). A schedule it would refuse must be refused at the Tenant
instead, with a message that says which field is wrong, not left to fail when the
operator applies the CronJob. ``SCHEDULE_PATTERN`` is the shape (for the CRD's CEL rule,
RE2); ``check`` also checks what a pattern cannot: ranges in order.
"""

from __future__ import annotations

import re
import zoneinfo
from dataclasses import dataclass
from functools import cache

MACROS = ("yearly", "annually", "monthly", "weekly", "daily", "midnight", "hourly")
MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


@dataclass(frozen=True)
class Field:
    name: str
    low: int
    high: int
    number: str  # regex of one value in [low, high], at most one leading zero
    names: tuple[str, ...] = ()  # value names, from ``low`` on
    any_mark: bool = False  # "?" allowed (day of month, day of week)


FIELDS = (
    Field("minute", 0, 59, "[0-5]?[0-9]"),
    Field("hour", 0, 23, "[01]?[0-9]|2[0-3]"),
    Field("day of month", 1, 31, "0?[1-9]|[12][0-9]|3[01]", any_mark=True),
    Field("month", 1, 12, "0?[1-9]|1[0-2]", names=MONTHS),
    Field("day of week", 0, 6, "0?[0-6]", names=DAYS, any_mark=True),
)
STEP = "[1-9][0-9]?"


def _field_pattern(field: Field) -> str:
    value = "|".join([field.number, *field.names])
    element = rf"(\*|({value})(-({value}))?)(/({STEP}))?"
    if field.any_mark:
        element = rf"(\?|{element})"
    return rf"{element}(,{element})*"


# Macros are case-sensitive in robfig/cron, month and day names are not.
SCHEDULE_PATTERN = (
    r"^(@(" + "|".join(MACROS) + r")|(?i:" + r"\s+".join(_field_pattern(f) for f in FIELDS) + r"))$"
)
FORM = (
    "schedule must be five cron fields (minute 0-59, hour 0-23, day of month 1-31, "
    "month 1-12 or jan-dec, day of week 0-6 or sun-sat; each *, a value, a range a-b, "
    "a list a,b or a step */n) or one of " + ", ".join("@" + m for m in MACROS)
)
TIME_ZONE_IN_SCHEDULE = (
    "schedule cannot carry a time zone (TZ= or CRON_TZ=): set spec.backup.timeZone instead"
)


def _value(text: str, field: Field) -> int:
    lowered = text.lower()
    if lowered in field.names:
        return field.low + field.names.index(lowered)
    if not text.isdigit():
        raise ValueError(f"{field.name} value {text!r} is not a number")
    value = int(text)
    if not field.low <= value <= field.high:
        raise ValueError(f"{field.name} value {value} is outside {field.low}-{field.high}")
    return value


def _check_field(text: str, field: Field) -> None:
    for element in text.split(","):
        body, _, step = element.partition("/")
        if step and (not step.isdigit() or int(step) == 0):
            raise ValueError(f"{field.name} step {step!r} must be a positive number")
        if body == "*" or (body == "?" and field.any_mark):
            continue
        low, dash, high = body.partition("-")
        start = _value(low, field)
        if dash and _value(high, field) < start:
            raise ValueError(f"{field.name} range {body!r} ends before it starts")


def check(schedule: str) -> str:
    """``schedule`` when Kubernetes would accept it in a CronJob; else ValueError saying
    what is wrong."""
    if "TZ=" in schedule:
        raise ValueError(TIME_ZONE_IN_SCHEDULE)
    if not re.match(SCHEDULE_PATTERN, schedule.strip()) or schedule != schedule.strip():
        raise ValueError(f"{FORM}; got {schedule!r}")
    if schedule.startswith("@"):
        return schedule
    for text, field in zip(schedule.split(), FIELDS, strict=True):
        _check_field(text, field)
    return schedule


# An IANA time zone name ("Europe/Paris", "Etc/UTC"); "Local" is refused by Kubernetes.
TIME_ZONE_PATTERN = r"^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+){0,2}$"


@cache
def _zones() -> frozenset[str]:
    try:
        return frozenset(zoneinfo.available_timezones())
    except Exception:  # no time zone database where this runs
        return frozenset()


def check_time_zone(name: str) -> str:
    """``name`` when it is a time zone Kubernetes accepts for a CronJob. Checked against
    the time zone database when this process has one (the API server has its own)."""
    if name.lower() == "local" or not re.match(TIME_ZONE_PATTERN, name):
        raise ValueError(f'timeZone must be an IANA time zone such as "Europe/Paris"; got {name!r}')
    zones = _zones()
    if zones and name not in zones:
        raise ValueError(f"timeZone {name!r} is not a known IANA time zone")
    return name
