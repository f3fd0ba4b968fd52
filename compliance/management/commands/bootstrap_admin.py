"""``manage.py bootstrap_admin``: create the first administrator, printing its password once.

Does nothing when a superuser exists, so ``make run`` can call it every time.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from compliance.services import administrator_bootstrap


class Command(BaseCommand):
    help = "Create the 'admin' superuser with a random password if no superuser exists."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--username", default="admin")

    def handle(self, *args: Any, **options: Any) -> None:
        password = administrator_bootstrap(username=options["username"])
        if password is None:
            self.stdout.write("An administrator already exists; no account created.")
            return
        self.stdout.write(
            "Created the administrator account (the password is shown once, stored hashed):\n"
            f"  username: {options['username']}\n  password: {password}\n"
        )
