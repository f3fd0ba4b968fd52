"""``GET /healthz``: is the registry able to work? Database, MLflow and broker, each checked.

200 when all three answer, 503 otherwise, with a reason per failed check. Nothing secret is
shown: URLs lose their credentials and errors are reduced to their type and first line.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from config.celery import app as celery_app
from registry import mlflow_gateway, selectors


def _check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def _check_broker() -> None:
    with celery_app.connection_for_write(url=settings.CELERY_BROKER_URL) as conn:
        conn.ensure_connection(
            max_retries=1, interval_start=0, timeout=settings.HEALTH_CHECK_TIMEOUT
        )


def _run_check(check: Callable[[], None]) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        check()
    except Exception as exc:  # noqa: BLE001  (a health check reports every failure)
        detail = getattr(exc, "detail", None) or f"{type(exc).__name__}: {exc}"
        return {"status": "error", "detail": mlflow_gateway.scrub_credentials(str(detail))}
    return {"status": "ok", "latency_ms": round((time.perf_counter() - started) * 1000, 1)}


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    checks = {
        "database": _run_check(_check_database),
        "mlflow": _run_check(mlflow_gateway.ping),
        "broker": _run_check(_check_broker),
    }
    healthy = all(check["status"] == "ok" for check in checks.values())
    body: dict[str, Any] = {"status": "ok" if healthy else "unavailable", "checks": checks}
    if checks["database"]["status"] == "ok":
        body["last_sync"] = selectors.last_sync_summary()
    return JsonResponse(body, status=200 if healthy else 503)
