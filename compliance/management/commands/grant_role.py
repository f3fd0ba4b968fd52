"""``manage.py grant_role USER ROLE [--model NAME]``: grant a security role."""

from __future__ import annotations

from typing import Any

from compliance.management.commands._roles import RoleCommand
from compliance.services import role_grant


class Command(RoleCommand):
    help = "Grant a SecMLOps security role to a user, globally or for one registered model."
    action = "granted"

    def change(self, **kwargs: Any) -> None:
        role_grant(**kwargs)
