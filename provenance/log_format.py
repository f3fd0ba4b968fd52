"""How a governance event becomes the bytes of a Merkle leaf.

A leaf is the RFC 8785 canonical JSON of one event. Canonical JSON makes the bytes a function
of the content alone, so anyone holding an entry can re-derive its leaf hash.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import rfc8785

SYSTEM = "system"


@dataclass(frozen=True)
class Actor:
    """Who acted, as they were at that moment: their id, name and the roles they held."""

    user_id: int | None
    name: str
    roles: tuple[str, ...] = ()

    @classmethod
    def system(cls, name: str = SYSTEM) -> Actor:
        return cls(user_id=None, name=name, roles=())


@dataclass(frozen=True)
class Event:
    """A governance event before it has a place in the log."""

    event_type: str
    actor: Actor
    object_type: str
    object_id: str
    before: Any = None
    after: Any = None
    reason: str = ""
    evidence: Sequence[str] = ()


def jsonable(value: Any) -> Any:  # noqa: PLR0911  (one return per JSON type reads best)
    """The value as plain JSON data: times in UTC ISO 8601, no NaN (RFC 8785 forbids it)."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, datetime):
        return format_time(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal | UUID):
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, Mapping):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, Sequence | set | frozenset):
        items = [jsonable(item) for item in value]
        return sorted(items, key=str) if isinstance(value, set | frozenset) else items
    return str(value)


def format_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def entry_document(
    *, index: int, event: Event, occurred_at: datetime, request_id: str
) -> dict[str, Any]:
    return {
        "index": index,
        "type": event.event_type,
        "time": format_time(occurred_at),
        "actor": {
            "id": event.actor.user_id,
            "name": event.actor.name,
            "roles": sorted(event.actor.roles),
        },
        "request_id": request_id,
        "object": {"type": event.object_type, "id": event.object_id},
        "before": jsonable(event.before),
        "after": jsonable(event.after),
        "reason": event.reason,
        "evidence": sorted(event.evidence),
    }


def canonical(document: Any) -> bytes:
    return rfc8785.dumps(document)
