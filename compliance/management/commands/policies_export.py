"""``manage.py policies_export [--output FILE]``: every promotion policy as YAML.

The output is what ``policies_import`` reads: edit it, review it like code, import it back.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from compliance.policies import policies_export


class Command(BaseCommand):
    help = "Write every promotion policy as YAML to standard output, or to --output FILE."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--output", type=Path, help="write to this file instead")

    def handle(self, *args: Any, **options: Any) -> None:
        text = policies_export()
        if options["output"] is None:
            self.stdout.write(text, ending="")
            return
        options["output"].write_text(text, encoding="utf-8")
        self.stderr.write(f"wrote {options['output']}")
