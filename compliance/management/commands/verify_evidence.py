"""``manage.py verify_evidence BUNDLE.zip``: the checks of the bundle's own ``verify.py``.

It runs the very module that is copied into every bundle (``compliance.evidence.verifier``),
so the registry and an auditor's offline check cannot disagree. It trusts only the bundle:
neither the database nor the registry's keys are consulted.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from compliance.evidence import verifier


class Command(BaseCommand):
    help = "Verify an evidence bundle (a zip, or an unpacked directory) as its verify.py does."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("bundle", type=Path, help="the evidence bundle zip or directory")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            report = verifier.verify(options["bundle"], out=self.stdout)
        except verifier.UsageError as exc:
            raise CommandError(str(exc), returncode=verifier.EXIT_USAGE) from None
        self.stdout.write(report.summary())
        failure = report.first_failure
        if failure is not None:
            raise CommandError(
                f"evidence bundle does not verify: {failure.file}: {failure.reason}",
                returncode=verifier.EXIT_FAILED,
            )
