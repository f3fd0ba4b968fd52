"""``manage.py init_keys``: make sure the log key and an attestation signing key exist.

Run on every start (``make run`` does); it creates keys only the first time, and prints the
public halves so an operator can publish them.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from provenance import services
from provenance.log_keys import log_signer


class Command(BaseCommand):
    help = "Create (first time only) and show the log key and the attestation signing key."

    def handle(self, *args: Any, **options: Any) -> None:
        log_key = services.log_key_register(log_signer())
        signing_key = services.signing_key_ensure()
        self.stdout.write(f"log key:         {log_key.verifier_key}")
        self.stdout.write(f"attestation key: {signing_key.scheme} {signing_key.key_id}")
