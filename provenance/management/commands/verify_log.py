"""``manage.py verify_log``: recompute the governance log and check every checkpoint.

Exit code 0 when everything verifies; 1 naming the first bad index and what is wrong otherwise.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from provenance import services


class Command(BaseCommand):
    help = "Verify the governance log: entries, Merkle tree, checkpoint signatures, consistency."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        bar: tqdm[Any] | None = None

        def progress(done: int, total: int) -> None:
            nonlocal bar
            if options["no_progress"]:
                return
            if bar is None:
                bar = tqdm(total=total, desc="log entries", unit="entry")
            bar.update(done - bar.n)

        report = services.log_verify(progress)
        if bar is not None:
            bar.close()
        if report.ok:
            self.stdout.write(
                f"OK: {report.tree_size} entries and {report.checkpoints_checked} signed "
                "checkpoints verify; successive checkpoints are consistent."
            )
            return
        for problem in report.problems:
            self.stderr.write(f"- {problem.message}")
        first = report.first_bad_index
        where = f"first bad index: {first}" if first is not None else "checkpoints are invalid"
        raise CommandError(f"the governance log does NOT verify ({where})")
