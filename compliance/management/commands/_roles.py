"""Shared argument handling of grant_role and revoke_role."""

from __future__ import annotations

import getpass
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.core.management.base import BaseCommand, CommandError, CommandParser

from compliance.models import SecurityRole
from compliance.services import role_lookup
from config.errors import DomainError
from registry.models import RegisteredModel

UNKNOWN_EXIT = 2


def add_arguments(parser: CommandParser) -> None:
    parser.add_argument("user", help="username")
    parser.add_argument("role", help="role key, e.g. model_validator")
    parser.add_argument("--model", help="registered model name (default: all models)")
    parser.add_argument("--reason", default="", help="why (kept with the record)")
    parser.add_argument("--by", help="username of the person acting (default: the OS user)")


def resolve(
    options: dict[str, Any],
) -> tuple[User, SecurityRole, RegisteredModel | None, User | None, str]:
    """Look up the arguments, failing with exit code 2 on anything unknown."""
    users = get_user_model()._default_manager
    user = users.filter(**{get_user_model().USERNAME_FIELD: options["user"]}).first()
    if user is None:
        raise CommandError(f"unknown user {options['user']!r}", returncode=UNKNOWN_EXIT)
    try:
        role = role_lookup(options["role"])
    except DomainError as exc:
        raise CommandError(exc.detail, returncode=UNKNOWN_EXIT) from None
    model = None
    if options["model"]:
        model = RegisteredModel.objects.filter(name=options["model"]).first()
        if model is None:
            raise CommandError(
                f"unknown registered model {options['model']!r}", returncode=UNKNOWN_EXIT
            )
    acting_user = None
    if options["by"]:
        acting_user = users.filter(**{get_user_model().USERNAME_FIELD: options["by"]}).first()
        if acting_user is None:
            raise CommandError(f"unknown acting user {options['by']!r}", returncode=UNKNOWN_EXIT)
    return user, role, model, acting_user, f"cli:{getpass.getuser()}"


class RoleCommand(BaseCommand):
    action = ""
    preposition = "to"

    def add_arguments(self, parser: CommandParser) -> None:
        add_arguments(parser)

    def change(self, **kwargs: Any) -> None:
        raise NotImplementedError

    def handle(self, *args: Any, **options: Any) -> None:
        user, role, model, acting_user, actor_name = resolve(options)
        try:
            self.change(
                user=user,
                role=role,
                registered_model=model,
                acting_user=acting_user,
                actor_name=actor_name,
                reason=options["reason"],
            )
        except DomainError as exc:
            raise CommandError(exc.detail) from None
        scope = f"model {model.name}" if model else "all models"
        self.stdout.write(
            f"{self.action} {role.key} {self.preposition} {user.get_username()} on {scope}"
        )
