"""``manage.py mlflow_webhook_register URL``: point MLflow's registry webhooks at the registry."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from config.errors import DomainError
from registry import mlflow_gateway

EVENTS = [
    "registered_model.created",
    "model_version.created",
    "model_version_tag.set",
    "model_version_tag.deleted",
    "model_version_alias.created",
    "model_version_alias.deleted",
]


class Command(BaseCommand):
    help = "Create or update the MLflow webhook that notifies the registry of registry changes."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("url", help="public URL of /webhooks/mlflow on this registry")
        parser.add_argument("--name", default="secmlops-registry")

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.MLFLOW_WEBHOOK_SECRET:
            raise CommandError("MLFLOW_WEBHOOK_SECRET is not set: set it first", returncode=2)
        try:
            webhook_id = mlflow_gateway.webhook_ensure(
                name=options["name"],
                url=options["url"],
                secret=settings.MLFLOW_WEBHOOK_SECRET,
                events=EVENTS,
            )
        except DomainError as exc:
            raise CommandError(exc.detail) from None
        self.stdout.write(f"MLflow webhook {webhook_id} delivers to {options['url']}")
