"""``manage.py revoke_role USER ROLE [--model NAME]``: revoke a security role."""

from __future__ import annotations

from typing import Any

from compliance.management.commands._roles import RoleCommand
from compliance.services import role_revoke


class Command(RoleCommand):
    help = "Revoke a SecMLOps security role from a user (the grant stays on record)."
    action = "revoked"
    preposition = "from"

    def change(self, **kwargs: Any) -> None:
        role_revoke(**kwargs)
