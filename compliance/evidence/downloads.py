"""The response carrying a bundle's zip, for the API and the pages alike."""

from __future__ import annotations

import base64
from typing import IO

from django.http import FileResponse

from compliance.models import EvidenceBundle


def evidence_file_response(bundle: EvidenceBundle, handle: IO[bytes]) -> FileResponse:
    """The zip as an attachment, with its SHA-256 as HTTP states a digest: base64 in
    ``Repr-Digest`` (RFC 9530) and in the older ``Digest`` (RFC 3230), which clients still
    read. The hex form is the bundle's ``sha256`` in the API."""
    response = FileResponse(
        handle,
        as_attachment=True,
        filename=f"evidence-{bundle.pk}.zip",
        content_type="application/zip",
    )
    encoded = base64.b64encode(bytes.fromhex(bundle.sha256)).decode()
    response["Repr-Digest"] = f"sha-256=:{encoded}:"
    response["Digest"] = f"sha-256={encoded}"
    return response
