"""``manage.py rotate_signing_key [--reason TEXT] [--by USERNAME]``: new attestation key."""

from __future__ import annotations

import getpass
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from config.errors import DomainError
from provenance import services
from provenance.log_format import Actor


class Command(BaseCommand):
    help = "Generate a new attestation signing key and retire the active one (logged)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--reason", default="", help="why (kept in the governance log)")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            key = services.signing_key_rotate(
                actor=Actor.system(f"cli:{getpass.getuser()}"), reason=options["reason"]
            )
        except DomainError as exc:
            raise CommandError(exc.detail) from None
        self.stdout.write(f"new attestation key: {key.scheme} {key.key_id}")
