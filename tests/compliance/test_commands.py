"""grant_role / revoke_role / bootstrap_admin from the command line."""

from __future__ import annotations

import subprocess
import sys
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from compliance.models import RoleAssignment
from registry.models import RegisteredModel
from tests.conftest import make_user

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_grant_role_globally() -> None:
    make_user("alice")

    output = run("grant_role", "alice", "model_developer", "--reason", "new hire")

    assert output.strip() == "granted model_developer to alice on all models"
    assignment = RoleAssignment.objects.get()
    assert assignment.registered_model is None
    assert assignment.granted_by_name.startswith("cli:")
    assert assignment.reason == "new hire"


def test_grant_role_for_one_model_by_a_named_actor() -> None:
    make_user("bob")
    make_user("dave")
    RegisteredModel.objects.create(name="fraud")

    run("grant_role", "bob", "model_validator", "--model", "fraud", "--by", "dave")

    assignment = RoleAssignment.objects.select_related("registered_model", "granted_by").get()
    assert assignment.registered_model is not None
    assert assignment.registered_model.name == "fraud"
    assert assignment.granted_by is not None
    assert assignment.granted_by.username == "dave"


def test_revoke_role() -> None:
    make_user("alice")
    run("grant_role", "alice", "model_developer")

    output = run("revoke_role", "alice", "model_developer")

    assert output.strip() == "revoked model_developer from alice on all models"
    assert RoleAssignment.objects.get().revoked_at is not None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nobody", "model_developer"], "unknown user 'nobody'"),
        (["alice", "wizard"], "unknown role 'wizard'"),
        (["alice", "model_developer", "--model", "nope"], "unknown registered model 'nope'"),
        (["alice", "model_developer", "--by", "ghost"], "unknown acting user 'ghost'"),
    ],
)
@pytest.mark.parametrize("command", ["grant_role", "revoke_role"])
def test_unknown_names_exit_2_and_write_nothing(
    command: str, args: list[str], message: str
) -> None:
    make_user("alice")

    with pytest.raises(CommandError) as raised:
        run(command, *args)

    assert raised.value.returncode == 2
    assert message in str(raised.value)
    assert not RoleAssignment.objects.exists()


def test_granting_twice_fails_with_a_clear_message() -> None:
    make_user("alice")
    run("grant_role", "alice", "model_developer")

    with pytest.raises(CommandError) as raised:
        run("grant_role", "alice", "model_developer")

    assert raised.value.returncode == 1
    assert "already holds model_developer" in str(raised.value)


def test_unknown_role_exits_2_as_a_process(test_database_env: dict[str, str]) -> None:
    make_user("alice")

    result = subprocess.run(
        [sys.executable, "manage.py", "grant_role", "alice", "wizard"],
        capture_output=True,
        text=True,
        check=False,
        env=test_database_env,
    )

    assert result.returncode == 2
    assert "unknown role 'wizard'" in result.stderr
    assert not RoleAssignment.objects.exists()


def test_bootstrap_admin_creates_one_admin_and_prints_the_password_once() -> None:
    first = run("bootstrap_admin")
    second = run("bootstrap_admin")

    password = first.split("password: ")[1].split()[0]
    admin = get_user_model().objects.get(username="admin")
    assert admin.is_superuser
    assert admin.check_password(password)
    assert password not in admin.password
    assert "already exists" in second
