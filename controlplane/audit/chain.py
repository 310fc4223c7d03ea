"""Pure hash-chain rules of the audit trail.

Each event's hash is SHA-256 over the previous event's hash and a canonical JSON of
every recorded field, so changing, removing or reordering any event breaks every hash
after it. The head (last sequence and hash) is stored separately and checked too, which
catches the removal of the newest events.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

GENESIS = "0" * 64


@dataclass(frozen=True)
class Event:
    chain: str
    seq: int
    org_id: str | None
    at: datetime
    actor: str
    action: str
    target: str
    outcome: str
    ip: str
    user_agent: str
    request_id: str
    detail: dict[str, Any] = field(default_factory=dict)
    prev_hash: str = GENESIS
    hash: str = ""

    def canonical(self) -> bytes:
        fields = {
            "chain": self.chain,
            "seq": self.seq,
            "org_id": self.org_id,
            "at": self.at.isoformat(timespec="microseconds"),
            "actor": self.actor,
            "action": self.action,
            "target": self.target,
            "outcome": self.outcome,
            "ip": self.ip,
            "user_agent": self.user_agent,
            "request_id": self.request_id,
            "detail": self.detail,
            "prev_hash": self.prev_hash,
        }
        return json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()

    def computed_hash(self) -> str:
        return hashlib.sha256(self.canonical()).hexdigest()


def chain_of(org_id: str | None) -> str:
    return f"org:{org_id}" if org_id else "system"


@dataclass(frozen=True)
class Verdict:
    chain: str
    ok: bool
    checked: int
    problem: str = ""
    broken_at: int | None = None


def verify(chain: str, events: Iterable[Event], head: tuple[int, str] | None) -> Verdict:
    """Check sequence, links and hashes of one chain's events (in seq order)."""
    prev = GENESIS
    expected_seq = 1
    checked = 0
    for ev in events:
        if ev.seq != expected_seq:
            return Verdict(chain, False, checked, f"sequence gap: expected {expected_seq}", ev.seq)
        if ev.prev_hash != prev:
            return Verdict(chain, False, checked, "link to previous event broken", ev.seq)
        if ev.computed_hash() != ev.hash:
            return Verdict(chain, False, checked, "event content does not match its hash", ev.seq)
        prev = ev.hash
        expected_seq += 1
        checked += 1
    last = (expected_seq - 1, prev)
    if head is not None and head != last:
        return Verdict(chain, False, checked, "chain head does not match the last event", head[0])
    if head is None and checked:
        return Verdict(chain, False, checked, "chain head is missing", None)
    return Verdict(chain, True, checked)
