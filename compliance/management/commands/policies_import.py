"""``manage.py policies_import FILE``: create or replace the policies of a YAML export.

All or nothing: every policy is validated before any is written, and an invalid file exits
with status 2 and the reason, leaving the policies as they were. Each policy that changes is a
``policy.changed`` log event; unchanged ones are not.
"""

from __future__ import annotations

import getpass
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from compliance.policies import policies_import
from config.errors import DomainError
from provenance.log_format import Actor

INVALID_EXIT = 2


class Command(BaseCommand):
    help = "Import promotion policies from a YAML file written by policies_export."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path, help="YAML file with a 'policies' list")

    def handle(self, *args: Any, **options: Any) -> None:
        path: Path = options["file"]
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise CommandError(f"cannot read {path}: {exc}", returncode=INVALID_EXIT) from None
        try:
            count = policies_import(text=text, actor=Actor.system(f"cli:{getpass.getuser()}"))
        except DomainError as exc:
            raise CommandError(exc.detail, returncode=INVALID_EXIT) from None
        self.stdout.write(f"imported {count} policies from {path}")
