"""The eight SecMLOps roles as data; granting and revoking, globally or per model."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from compliance import selectors, services
from compliance.models import RoleAssignment, SecurityRole
from compliance.roles_catalogue import DEFAULT_ROLES
from config.errors import NotFound
from registry.models import RegisteredModel
from tests.conftest import make_user

pytestmark = pytest.mark.django_db

EIGHT = {
    "security_architect": ("Security Architect", "technology"),
    "data_steward": ("Data Steward", "process"),
    "model_developer": ("Model Developer", "people"),
    "model_validator": ("Model Validator", "process"),
    "mlops_engineer": ("MLOps Engineer", "technology"),
    "security_operations": ("Security Operations", "technology"),
    "compliance_officer": ("Compliance Officer", "compliance"),
    "risk_owner": ("Risk Owner", "governance"),
}


def test_the_eight_default_roles_ship_as_data() -> None:
    roles = {r.key: (r.name, r.pillar) for r in SecurityRole.objects.filter(is_default=True)}
    assert roles == EIGHT
    assert len(DEFAULT_ROLES) == 8
    for role in SecurityRole.objects.all():
        assert role.responsibilities
        assert role.phases
        assert role.capabilities


def test_grant_records_who_and_when(superuser: User) -> None:
    alice = make_user("alice")
    role = SecurityRole.objects.get(key="model_developer")
    before = timezone.now()

    assignment = services.role_grant(
        user=alice, role=role, acting_user=superuser, reason="joined the fraud team"
    )

    assert assignment.granted_by == superuser
    assert assignment.granted_by_name == "root"
    assert assignment.granted_at >= before
    assert assignment.reason == "joined the fraud team"
    assert selectors.roles_held(user=alice) == {"model_developer"}


def test_revoke_keeps_the_grant_as_history(superuser: User) -> None:
    alice = make_user("alice")
    role = SecurityRole.objects.get(key="model_developer")
    services.role_grant(user=alice, role=role, acting_user=superuser)

    services.role_revoke(user=alice, role=role, acting_user=None, actor_name="cli:ops")

    record = RoleAssignment.objects.get()
    assert record.revoked_at is not None
    assert record.revoked_by_name == "cli:ops"
    assert selectors.roles_held(user=alice) == set()


def test_a_role_can_be_granted_again_after_revocation(superuser: User) -> None:
    alice = make_user("alice")
    role = SecurityRole.objects.get(key="model_developer")
    services.role_grant(user=alice, role=role, acting_user=superuser)
    services.role_revoke(user=alice, role=role, acting_user=superuser)

    services.role_grant(user=alice, role=role, acting_user=superuser)

    assert RoleAssignment.objects.count() == 2
    assert selectors.roles_held(user=alice) == {"model_developer"}


def test_granting_twice_is_a_conflict_and_writes_nothing(superuser: User) -> None:
    alice = make_user("alice")
    role = SecurityRole.objects.get(key="model_validator")
    services.role_grant(user=alice, role=role, acting_user=superuser)

    with pytest.raises(services.RoleAlreadyGranted) as raised:
        services.role_grant(user=alice, role=role, acting_user=superuser)

    assert raised.value.code == "role_already_granted"
    assert RoleAssignment.objects.count() == 1


def test_revoking_what_is_not_held_is_a_conflict(superuser: User) -> None:
    alice = make_user("alice")
    role = SecurityRole.objects.get(key="model_validator")

    with pytest.raises(services.RoleNotGranted):
        services.role_revoke(user=alice, role=role, acting_user=superuser)


def test_a_per_model_role_applies_to_that_model_only(superuser: User) -> None:
    bob = make_user("bob")
    fraud = RegisteredModel.objects.create(name="fraud")
    churn = RegisteredModel.objects.create(name="churn")
    validator = SecurityRole.objects.get(key="model_validator")
    steward = SecurityRole.objects.get(key="data_steward")
    services.role_grant(user=bob, role=validator, registered_model=fraud, acting_user=superuser)
    services.role_grant(user=bob, role=steward, acting_user=superuser)

    assert selectors.roles_held(user=bob, registered_model=fraud) == {
        "model_validator",
        "data_steward",
    }
    assert selectors.roles_held(user=bob, registered_model=churn) == {"data_steward"}
    assert selectors.roles_held(user=bob) == {"data_steward"}


def test_the_same_role_may_be_held_globally_and_per_model(superuser: User) -> None:
    bob = make_user("bob")
    fraud = RegisteredModel.objects.create(name="fraud")
    role = SecurityRole.objects.get(key="risk_owner")
    services.role_grant(user=bob, role=role, acting_user=superuser)

    services.role_grant(user=bob, role=role, registered_model=fraud, acting_user=superuser)

    assert RoleAssignment.objects.filter(revoked_at__isnull=True).count() == 2


def test_unknown_role_lookup_names_the_known_ones() -> None:
    with pytest.raises(NotFound) as raised:
        services.role_lookup("wizard")
    assert raised.value.code == "role_unknown"
    assert "model_validator" in raised.value.detail


def test_granting_in_the_admin_goes_through_the_service(client: Client, superuser: User) -> None:
    alice = make_user("alice")
    role = SecurityRole.objects.get(key="risk_owner")
    client.force_login(superuser)

    response = client.post(
        "/admin/compliance/roleassignment/add/",
        {"user": alice.pk, "role": role.pk, "registered_model": "", "reason": "owner"},
    )

    assert response.status_code == 302
    assignment = RoleAssignment.objects.get()
    assert assignment.granted_by == superuser
    assert assignment.granted_by_name == "root"


def test_a_duplicate_grant_in_the_admin_shows_an_error(client: Client, superuser: User) -> None:
    alice = make_user("alice")
    role = SecurityRole.objects.get(key="risk_owner")
    services.role_grant(user=alice, role=role, acting_user=superuser)
    client.force_login(superuser)

    response = client.post(
        "/admin/compliance/roleassignment/add/",
        {"user": alice.pk, "role": role.pk, "registered_model": "", "reason": ""},
        follow=True,
    )

    assert "already holds risk_owner" in response.content.decode()
    assert RoleAssignment.objects.count() == 1


def test_revoking_in_the_admin_goes_through_the_service(client: Client, superuser: User) -> None:
    alice = make_user("alice")
    role = SecurityRole.objects.get(key="risk_owner")
    assignment = services.role_grant(user=alice, role=role, acting_user=superuser)
    client.force_login(superuser)

    client.post(
        "/admin/compliance/roleassignment/",
        {"action": "revoke", "_selected_action": [assignment.pk]},
    )

    assignment.refresh_from_db()
    assert assignment.revoked_at is not None
    assert assignment.revoked_by == superuser


def test_grants_cannot_be_deleted_in_the_admin(client: Client, superuser: User) -> None:
    alice = make_user("alice")
    role = SecurityRole.objects.get(key="risk_owner")
    assignment = services.role_grant(user=alice, role=role, acting_user=superuser)
    client.force_login(superuser)

    response = client.post(
        f"/admin/compliance/roleassignment/{assignment.pk}/delete/", {"post": "yes"}
    )

    assert response.status_code == 403
    assert RoleAssignment.objects.filter(pk=assignment.pk).exists()


def test_the_roles_page_lists_catalogue_and_holders(
    client: Client, personas: dict[str, User]
) -> None:
    client.force_login(personas["alice"])

    page = client.get("/governance/roles/").content.decode()

    for name, _pillar in EIGHT.values():
        assert name in page
    assert "heidi" in page
