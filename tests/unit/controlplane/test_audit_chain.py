"""The audit hash chain: verification catches edits, gaps, reordering and truncation."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from controlplane.audit import chain
from controlplane.audit.chain import GENESIS, Event


def _chain(n: int) -> list[Event]:
    events: list[Event] = []
    prev = GENESIS
    for seq in range(1, n + 1):
        ev = Event(
            chain="org:1",
            seq=seq,
            org_id="1",
            at=datetime(2026, 1, 1, 12, 0, seq, tzinfo=UTC),
            actor="u",
            action=f"a.{seq}",
            target="t",
            outcome="success",
            ip="127.0.0.1",
            user_agent="ua",
            request_id=f"r{seq}",
            detail={"k": "v"},
            prev_hash=prev,
        )
        ev = replace(ev, hash=ev.computed_hash())
        events.append(ev)
        prev = ev.hash
    return events


def test_an_intact_chain_verifies() -> None:
    events = _chain(5)
    verdict = chain.verify("org:1", events, (5, events[-1].hash))
    assert verdict.ok
    assert verdict.checked == 5
    assert chain.verify("empty", [], None).ok


def test_edits_gaps_reordering_and_truncation_are_detected() -> None:
    events = _chain(5)
    head = (5, events[-1].hash)
    edited = [*events[:2], replace(events[2], actor="mallory"), *events[3:]]
    assert chain.verify("c", edited, head).broken_at == 3
    detail = [*events[:1], replace(events[1], detail={"k": "w"}), *events[2:]]
    assert chain.verify("c", detail, head).broken_at == 2
    gap = [*events[:2], *events[3:]]
    assert chain.verify("c", gap, head).problem.startswith("sequence gap")
    swapped = [events[0], events[2], events[1], *events[3:]]
    assert not chain.verify("c", swapped, head).ok
    truncated = chain.verify("c", events[:4], head)
    assert truncated.problem == "chain head does not match the last event"
    assert chain.verify("c", events, None).problem == "chain head is missing"


def test_hash_covers_every_field() -> None:
    ev = _chain(1)[0]
    for change in (
        {"ip": "10.0.0.1"},
        {"outcome": "failure"},
        {"request_id": "x"},
        {"user_agent": "x"},
        {"target": "x"},
        {"at": datetime(2026, 1, 2, tzinfo=UTC)},
    ):
        assert replace(ev, **change).computed_hash() != ev.hash
