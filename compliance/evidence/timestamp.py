"""RFC 3161 timestamps over a bundle's manifest, from the authority in ``EVIDENCE_TSA_URL``.

The token proves the manifest existed at that time, independently of the registry's clock.
"""

from __future__ import annotations

import hashlib

import requests
from django.conf import settings
from rfc3161_client import (
    HashAlgorithm,
    PKIStatus,
    TimestampRequestBuilder,
    decode_timestamp_response,
)


class TimestampError(RuntimeError):
    """The timestamp authority did not answer with a granted token for our request."""


def timestamp_token(data: bytes) -> bytes:
    """The DER TimeStampResp of the configured authority for ``data`` (SHA-256 imprint)."""
    request = (
        TimestampRequestBuilder()
        .data(data)
        .hash_algorithm(HashAlgorithm.SHA256)
        .cert_request(cert_request=True)
        .build()
    )
    try:
        response = requests.post(
            settings.EVIDENCE_TSA_URL,
            data=request.as_bytes(),
            headers={"Content-Type": "application/timestamp-query"},
            timeout=settings.EVIDENCE_TSA_TIMEOUT,
        )
        response.raise_for_status()
    except requests.RequestException as error:
        raise TimestampError(f"timestamp authority unreachable: {error}") from error
    try:
        answer = decode_timestamp_response(response.content)
    except ValueError as error:
        raise TimestampError(f"timestamp authority sent no valid response: {error}") from error
    if answer.status not in (PKIStatus.GRANTED, PKIStatus.GRANTED_WITH_MODS):
        raise TimestampError(f"timestamp authority refused: status {answer.status}")
    info = answer.tst_info
    if info.nonce != request.nonce:
        raise TimestampError("timestamp authority answered another request (nonce mismatch)")
    if info.message_imprint.message != hashlib.sha256(data).digest():
        raise TimestampError("timestamp token is over other data than the manifest")
    return response.content
