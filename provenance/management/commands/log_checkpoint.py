"""``manage.py log_checkpoint``: sign the current tree head now."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from provenance import services


class Command(BaseCommand):
    help = "Issue a signed checkpoint of the governance log now."

    def handle(self, *args: Any, **options: Any) -> None:
        checkpoint = services.checkpoint_issue()
        if checkpoint is None:
            self.stdout.write("The log is empty: nothing to sign.")
            return
        self.stdout.write(checkpoint.note)
