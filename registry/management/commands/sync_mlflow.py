"""``manage.py sync_mlflow [--model NAME]``: run the MLflow reconcile now, with a progress bar."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from config.errors import DomainError
from registry import services
from registry.choices import SyncTrigger


class Command(BaseCommand):
    help = "Mirror MLflow's registered models, versions, runs, datasets and aliases now."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--model", help="sync only this registered model")
        parser.add_argument("--no-progress", action="store_true", help="no progress bar")

    def handle(self, *args: Any, **options: Any) -> None:
        bars: dict[str, tqdm[Any]] = {}

        def progress(stage: str, done: int, total: int | None) -> None:
            if options["no_progress"]:
                return
            bar = bars.get(stage)
            if bar is None:
                bar = bars[stage] = tqdm(desc=f"MLflow {stage}", total=total, unit=stage[:-1])
            bar.update(done - bar.n)

        try:
            report = services.mlflow_sync(
                trigger=SyncTrigger.MANUAL, model_name=options["model"], on_progress=progress
            )
        except DomainError as exc:
            raise CommandError(exc.detail) from None
        finally:
            for bar in bars.values():
                bar.close()
        changes = {key: value for key, value in sorted(report.counts.items()) if value}
        if not changes:
            self.stdout.write("In sync: nothing changed.")
            return
        self.stdout.write("Synced: " + ", ".join(f"{k}={v}" for k, v in changes.items()))
