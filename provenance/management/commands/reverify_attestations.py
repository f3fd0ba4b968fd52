"""``manage.py reverify_attestations``: check stored attestations again, in bulk, now.

After a signer is distrusted or a key retired, or on a schedule: every attestation (or those of
one signer, or one predicate type) is re-verified from its stored bytes against today's trust,
its outcome recorded and each change of outcome logged. A long pass uses every core
(docs/attestations.md).

Exit code 0 when every attestation checked verifies; 1 listing those that do not, or naming a
signer the registry has never trusted.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from config.errors import DomainError
from provenance import selectors
from provenance.log_format import Actor
from provenance.services import attestations_reverify


class Command(BaseCommand):
    help = "Re-verify stored attestations against today's trust; record and log the outcomes."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--signer",
            help="only this trusted signer's attestations (`registry`: those it signed itself)",
        )
        parser.add_argument("--predicate-type", help="only attestations of this predicate type")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            attestations = selectors.attestations_filtered(
                signer=options["signer"], predicate_type=options["predicate_type"]
            )
        except DomainError as refused:
            raise CommandError(refused.detail) from None
        report = attestations_reverify(
            attestations=attestations, actor=Actor.system("manage.py reverify_attestations")
        )
        failed = report.failed
        for outcome in failed:
            attestation = outcome.attestation
            self.stdout.write(
                f"FAIL sha256:{attestation.envelope_digest} {attestation.predicate_type}"
                f" — {outcome.problem}"
            )
        checked = len(report.outcomes)
        if failed:
            raise CommandError(f"{len(failed)} of {checked} attestations do NOT verify")
        self.stdout.write(f"OK: {checked} attestations verify")
