"""Who must approve, and whether those who did are enough — pure logic, no Django.

A policy's approvals are requirements ``{"roles": [...], "count": n}``: n distinct people, each
holding at least one of the roles. One person fills at most one requirement slot, whatever
roles they hold (ARCHITECTURE: separation of duties), so deciding whether a set of approvers
meets the policy is a bipartite matching of people to slots, solved exactly with augmenting
paths (the sets are tiny: a handful of slots and approvers).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


class PolicyInvalid(ValueError):
    """A policy document that cannot be enforced as written."""


@dataclass(frozen=True)
class Requirement:
    roles: tuple[str, ...]
    count: int

    def describe(self) -> str:
        return f"{self.count} of {' or '.join(self.roles)}"

    def to_dict(self) -> dict[str, Any]:
        return {"roles": list(self.roles), "count": self.count}


@dataclass(frozen=True)
class Approver:
    user_id: int
    name: str
    roles: frozenset[str]


@dataclass(frozen=True)
class Quorum:
    met: bool
    counted: dict[int, int] = field(default_factory=dict)  # user id -> requirement index
    missing: list[tuple[Requirement, int]] = field(default_factory=list)

    def describe_missing(self) -> list[str]:
        return [f"{n} more {' or '.join(r.roles)}" for r, n in self.missing]


def requirements_parse(document: Any, *, known_roles: Iterable[str]) -> list[Requirement]:
    """Validate a policy's ``approvals`` list; raises PolicyInvalid naming what is wrong."""
    known = set(known_roles)
    if not isinstance(document, list) or not document:
        raise PolicyInvalid("approvals must be a non-empty list of {roles, count}")
    requirements = []
    for index, item in enumerate(document):
        if not isinstance(item, Mapping):
            raise PolicyInvalid(f"approvals[{index}] must be an object")
        roles, count = item.get("roles"), item.get("count", 1)
        if not isinstance(roles, list) or not roles or not all(isinstance(r, str) for r in roles):
            raise PolicyInvalid(f"approvals[{index}].roles must be a non-empty list of role keys")
        unknown = sorted(set(roles) - known)
        if unknown:
            raise PolicyInvalid(f"approvals[{index}] names unknown roles: {', '.join(unknown)}")
        if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= 20:
            raise PolicyInvalid(f"approvals[{index}].count must be an integer from 1 to 20")
        requirements.append(Requirement(roles=tuple(roles), count=count))
    return requirements


def quorum(requirements: Sequence[Requirement], approvers: Sequence[Approver]) -> Quorum:
    """The largest assignment of approvers to requirement slots, and what is still missing."""
    slots = [index for index, r in enumerate(requirements) for _ in range(r.count)]
    holder: dict[int, int] = {}  # slot -> position in approvers

    def eligible(person: Approver, slot: int) -> bool:
        return bool(person.roles & set(requirements[slots[slot]].roles))

    def place(position: int, seen: set[int]) -> bool:
        for slot in range(len(slots)):
            if slot in seen or not eligible(approvers[position], slot):
                continue
            seen.add(slot)
            if slot not in holder or place(holder[slot], seen):
                holder[slot] = position
                return True
        return False

    for position in range(len(approvers)):
        place(position, set())
    counted = {approvers[p].user_id: slots[s] for s, p in holder.items()}
    filled = [0] * len(requirements)
    for slot in holder:
        filled[slots[slot]] += 1
    missing = [(r, r.count - filled[i]) for i, r in enumerate(requirements) if filled[i] < r.count]
    return Quorum(met=not missing, counted=counted, missing=missing)
