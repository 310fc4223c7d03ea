"""One way to set a status condition (conditions.py): table tests of its rules."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from tenantry_operator.conditions import Cond, find, set_condition, set_conditions

OLD = "2026-01-01T00:00:00Z"


def cond(ctype: str, status: str, reason: str = "R", message: str = "m") -> dict[str, Any]:
    return {
        "type": ctype,
        "status": status,
        "reason": reason,
        "message": message,
        "observedGeneration": 1,
        "lastTransitionTime": OLD,
    }


EXISTING = [cond("Ready", "True"), cond("Degraded", "False"), cond("Custom", "True")]


@pytest.mark.parametrize(
    ("new", "keeps_time"),
    [
        (Cond("Ready", True, "Other", "another message"), True),  # same status: kept
        (Cond("Ready", False, "R", "m"), False),  # True -> False: moves
        (Cond("Ready", None, "R", "m"), False),  # True -> Unknown: moves
        (Cond("Degraded", False, "AsExpected", "new words"), True),
        (Cond("Degraded", True, "Broken", "m"), False),
        (Cond("Progressing", True, "R", "m"), False),  # new condition: now
    ],
)
def test_transition_time_moves_only_when_the_status_flips(new: Cond, keeps_time: bool) -> None:
    out = set_condition(EXISTING, new, generation=7)
    got = find(out, new.type)
    assert got is not None
    assert (got["lastTransitionTime"] == OLD) is keeps_time
    assert got["status"] == new.status
    assert (got["reason"], got["message"], got["observedGeneration"]) == (
        new.reason,
        new.message,
        7,
    )


def test_other_conditions_are_kept_in_place_and_the_input_is_not_changed() -> None:
    before = copy.deepcopy(EXISTING)
    out = set_condition(EXISTING, Cond("Degraded", True, "Broken", "m"), generation=2)
    assert before == EXISTING
    assert [c["type"] for c in out] == ["Ready", "Degraded", "Custom"]
    assert out[0] == EXISTING[0]
    assert out[2] == EXISTING[2]
    appended = set_condition(EXISTING, Cond("Valid", True, "R", "m"), generation=2)
    assert [c["type"] for c in appended] == ["Ready", "Degraded", "Custom", "Valid"]


def test_transition_time_can_come_from_an_earlier_status() -> None:
    """A condition recomputed in the same reconcile keeps the time of the status
    last written, not of the one being built."""
    building = [{**cond("Ready", "True"), "lastTransitionTime": "2026-06-06T00:00:00Z"}]
    written = [cond("Ready", "False")]
    out = set_condition(building, Cond("Ready", False, "R", "m"), generation=1, since=written)
    assert out[0]["lastTransitionTime"] == OLD


def test_set_conditions_sets_each_against_the_same_base() -> None:
    out = set_conditions(
        EXISTING,
        [Cond("Ready", True, "R", "m"), Cond("Degraded", True, "Broken", "m")],
        generation=3,
    )
    assert find(out, "Ready")["lastTransitionTime"] == OLD  # type: ignore[index]
    assert find(out, "Degraded")["lastTransitionTime"] != OLD  # type: ignore[index]
    assert find(out, "Custom") == EXISTING[2]


def test_no_conditions_yet() -> None:
    empties: tuple[list[dict[str, Any]] | None, ...] = (None, [])
    for empty in empties:
        [only] = set_condition(empty, Cond("Ready", None, "Waiting", "m"), generation=None)
        assert only["status"] == "Unknown"
        assert only["lastTransitionTime"] != OLD
