"""Quorum: one person fills one requirement at most; the matching is exact (property-tested)."""

from __future__ import annotations

from itertools import permutations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from compliance.quorum import Approver, PolicyInvalid, Requirement, quorum, requirements_parse

ROLES = ("validator", "architect", "secops", "compliance", "risk")


def people(*role_sets: set[str]) -> list[Approver]:
    return [Approver(user_id=i, name=f"p{i}", roles=frozenset(r)) for i, r in enumerate(role_sets)]


def test_a_person_holding_two_required_roles_counts_once() -> None:
    requirements = [Requirement(("validator",), 1), Requirement(("architect",), 1)]

    result = quorum(requirements, people({"validator", "architect"}))

    assert not result.met
    assert len(result.counted) == 1


def test_the_matching_is_not_fooled_by_order() -> None:
    # Greedy first-fit would put p0 on "validator or architect" and leave "validator" empty.
    requirements = [Requirement(("validator", "architect"), 1), Requirement(("validator",), 1)]

    result = quorum(requirements, people({"validator"}, {"architect"}))

    assert result.met
    assert result.counted == {0: 1, 1: 0}


def test_missing_says_how_many_of_what() -> None:
    requirements = [Requirement(("validator",), 2), Requirement(("risk",), 1)]

    result = quorum(requirements, people({"validator"}))

    assert result.describe_missing() == ["1 more validator", "1 more risk"]


def brute_force(requirements: list[Requirement], approvers: list[Approver]) -> int:
    """The largest number of slots any assignment fills, by trying them all."""
    slots = [i for i, r in enumerate(requirements) for _ in range(r.count)]
    best = 0
    people_and_gaps: list[Approver | None] = [*approvers, *([None] * len(slots))]
    for chosen in permutations(people_and_gaps, len(slots)):
        filled = sum(
            1
            for slot, person in zip(slots, chosen, strict=True)
            if person is not None and person.roles & set(requirements[slot].roles)
        )
        best = max(best, filled)
    return best


requirement_lists = st.lists(
    st.builds(
        Requirement,
        roles=st.lists(st.sampled_from(ROLES), min_size=1, max_size=2, unique=True).map(tuple),
        count=st.integers(1, 2),
    ),
    min_size=1,
    max_size=3,
)
approver_lists = st.lists(st.sets(st.sampled_from(ROLES), max_size=3), max_size=4).map(
    lambda sets: people(*sets)
)


@settings(max_examples=150, deadline=None)
@given(requirements=requirement_lists, approvers=approver_lists)
def test_quorum_fills_as_many_slots_as_any_assignment_could(
    requirements: list[Requirement], approvers: list[Approver]
) -> None:
    result = quorum(requirements, approvers)
    slots = sum(r.count for r in requirements)
    missing = sum(n for _, n in result.missing)

    assert slots - missing == brute_force(requirements, approvers)
    assert len(result.counted) == slots - missing  # each counted person fills one slot
    assert result.met == (missing == 0)
    for user_id, index in result.counted.items():
        assert approvers[user_id].roles & set(requirements[index].roles)


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ([], "non-empty list"),
        ([{"roles": []}], "non-empty list of role keys"),
        ([{"roles": ["nobody"]}], "unknown roles: nobody"),
        ([{"roles": ["validator"], "count": 0}], "integer from 1 to 20"),
        ([{"roles": ["validator"], "count": True}], "integer from 1 to 20"),
        (["validator"], "must be an object"),
    ],
)
def test_invalid_requirements_are_refused(document: object, message: str) -> None:
    with pytest.raises(PolicyInvalid, match=message):
        requirements_parse(document, known_roles=ROLES)
