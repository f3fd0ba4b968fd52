"""``manage.py reverify_model_version NAME VERSION``: re-hash and re-verify now.

Exit 0 when the version PASSED, 1 when it FAILED (files changed or an attestation no longer
verifies), 2 when there is no such version or it has not been hashed yet.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from config.errors import DomainError
from provenance.log_format import Actor
from registry import selectors, services


class Command(BaseCommand):
    help = "Re-hash a model version's files and re-verify every attestation it depends on."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", help="registered model name")
        parser.add_argument("version", type=int, help="version number")

    def handle(self, *args: Any, **options: Any) -> None:
        name, number = options["name"], options["version"]
        version = selectors.version_get(name=name, version=number)
        if version is None:
            self.stderr.write(f"No model version {name}/{number}.")
            raise SystemExit(2)
        try:
            attestation = services.model_version_reverify(
                version_pk=version.pk, actor=Actor.system("manage.py reverify_model_version")
            )
        except DomainError as exc:
            self.stderr.write(exc.detail)
            raise SystemExit(2) from None
        assert attestation is not None  # noqa: S101  (the version was just read)
        predicate = attestation.statement["predicate"]
        for checked in predicate["attestations"]:
            mark = "ok  " if checked["status"] == "verified" else "FAIL"
            problem = f" — {checked['problem']}" if checked["problem"] else ""
            self.stdout.write(
                f"{mark} {checked['predicateType']} sha256:{checked['digest']['sha256']}{problem}"
            )
        rehash = predicate["rehash"]
        if not rehash["match"]:
            self.stdout.write(
                f"FAIL files hash to sha256:{rehash['measured']['sha256']}, "
                f"recorded sha256:{rehash['expected']['sha256']}"
            )
        self.stdout.write(f"{name}/{number}: {predicate['result']}")
        if predicate["result"] != "PASSED":
            raise SystemExit(1)
