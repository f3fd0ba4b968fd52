"""Verification of MLflow model-registry webhook deliveries.

MLflow signs each delivery the Standard Webhooks way: header ``X-MLflow-Signature`` holds
``v1,<base64 HMAC-SHA256(secret, "<delivery id>.<timestamp>.<body>")>``, with the delivery id
and a Unix timestamp in their own headers. A delivery is accepted only when the signature
matches and the timestamp is within the tolerance; the caller refuses a delivery id seen before.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from config.errors import DomainError

SIGNATURE_HEADER = "X-MLflow-Signature"
TIMESTAMP_HEADER = "X-MLflow-Timestamp"
DELIVERY_ID_HEADER = "X-MLflow-Delivery-Id"


class WebhookRefused(DomainError):
    """A delivery the registry will not act on; ``status`` is the HTTP answer."""

    def __init__(self, detail: str, *, code: str, status: int = 400) -> None:
        super().__init__(detail, code=code)
        self.status = status  # type: ignore[misc]  # per-instance, unlike other errors


def expected_signature(secret: str, delivery_id: str, timestamp: str, body: bytes) -> str:
    signed = delivery_id.encode() + b"." + timestamp.encode() + b"." + body
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def verify_delivery(
    *,
    body: bytes,
    headers: Mapping[str, str],
    secret: str,
    now: datetime,
    tolerance_seconds: int,
) -> dict[str, Any]:
    """Return the delivery's JSON payload, or raise WebhookRefused saying why not."""
    if not secret:
        raise WebhookRefused(
            "MLFLOW_WEBHOOK_SECRET is not configured; webhooks are disabled",
            code="webhook_not_configured",
            status=503,
        )
    signature = headers.get(SIGNATURE_HEADER, "")
    timestamp = headers.get(TIMESTAMP_HEADER, "")
    delivery_id = headers.get(DELIVERY_ID_HEADER, "")
    if not signature:
        raise WebhookRefused(
            "the delivery is not signed", code="webhook_signature_missing", status=401
        )
    if not timestamp or not delivery_id:
        raise WebhookRefused(
            f"{TIMESTAMP_HEADER} and {DELIVERY_ID_HEADER} are required",
            code="webhook_headers_missing",
        )
    expected = expected_signature(secret, delivery_id, timestamp, body)
    offered = signature.split()
    if not any(hmac.compare_digest(candidate, expected) for candidate in offered):
        raise WebhookRefused(
            "the signature does not match", code="webhook_signature_invalid", status=401
        )
    try:
        sent_at = int(timestamp)
    except ValueError:
        raise WebhookRefused(
            "the timestamp is not a Unix time", code="webhook_timestamp_invalid"
        ) from None
    if abs(now.timestamp() - sent_at) > tolerance_seconds:
        raise WebhookRefused(
            f"the timestamp is more than {tolerance_seconds}s away from now",
            code="webhook_stale",
        )
    try:
        payload = json.loads(body)
    except ValueError:
        raise WebhookRefused("the body is not JSON", code="webhook_payload_invalid") from None
    if not isinstance(payload, dict):
        raise WebhookRefused("the body is not a JSON object", code="webhook_payload_invalid")
    return payload
