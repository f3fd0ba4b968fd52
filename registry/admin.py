"""Read-only admin over the MLflow mirror: MLflow is where these change, never here."""

from __future__ import annotations

from django.contrib import admin

from config.admin_base import ReadOnlyAdmin
from registry.models import (
    AliasHistory,
    Dataset,
    ModelAlias,
    ModelVersion,
    RegisteredModel,
    Run,
    SyncRun,
    WebhookDelivery,
)


@admin.register(RegisteredModel)
class RegisteredModelAdmin(ReadOnlyAdmin):
    list_display = ["name", "mlflow_updated_at", "deleted_at"]
    search_fields = ["name"]


@admin.register(ModelVersion)
class ModelVersionAdmin(ReadOnlyAdmin):
    list_display = ["registered_model", "version", "status", "mlflow_status", "mlflow_run_id"]
    list_filter = ["status", "mlflow_status"]
    search_fields = ["registered_model__name", "mlflow_run_id"]
    list_select_related = ["registered_model"]


@admin.register(Run)
class RunAdmin(ReadOnlyAdmin):
    list_display = ["run_id", "run_name", "user", "status", "start_time"]
    search_fields = ["run_id", "run_name", "user"]


@admin.register(Dataset)
class DatasetAdmin(ReadOnlyAdmin):
    list_display = ["name", "digest", "source_type"]
    search_fields = ["name", "digest"]


@admin.register(ModelAlias)
class ModelAliasAdmin(ReadOnlyAdmin):
    list_display = ["registered_model", "alias", "version", "updated_at"]
    list_select_related = ["registered_model", "version"]


@admin.register(AliasHistory)
class AliasHistoryAdmin(ReadOnlyAdmin):
    list_display = [
        "registered_model",
        "alias",
        "from_version",
        "to_version",
        "changed_at",
        "source",
    ]
    list_select_related = ["registered_model", "from_version", "to_version"]


@admin.register(SyncRun)
class SyncRunAdmin(ReadOnlyAdmin):
    list_display = ["started_at", "trigger", "scope", "status", "finished_at"]
    list_filter = ["status", "trigger"]


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdmin):
    list_display = ["received_at", "delivery_id", "event", "outcome", "reason"]
    list_filter = ["outcome"]
