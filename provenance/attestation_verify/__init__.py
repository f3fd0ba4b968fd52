"""Parse, sign and verify in-toto attestations: DSSE envelopes and keyless Sigstore bundles.

Everything uploaded to the registry is hostile until proven otherwise, so this module is the
single gate between raw bytes and a statement the registry may act on.  Three rules shape it:

* **Verbatim bytes.**  A DSSE signature covers ``PAE(payloadType, payload)`` over the *decoded
  payload bytes*.  We keep the uploaded envelope and its payload exactly as received and never
  re-serialise them: two JSON encoders rarely agree byte for byte, and a re-encoded payload no
  longer matches its signature.  The only JSON we serialise ourselves is what we sign, with
  RFC 8785 canonical JSON so the bytes are reproducible.
* **One stable reason per rejection.**  Every refusal is an :class:`AttestationRejected` with a
  machine-readable ``code`` (for API clients and the rejection log) and a human ``detail``.
* **Library crypto only.**  DSSE signing, PAE and signature checks come from securesystemslib;
  Sigstore bundles are verified by sigstore-python against a pinned trusted root read from disk,
  never fetched, so verification works on an air-gapped machine.

Pure Python: no Django imports, so workers, management commands and the standalone evidence
verifier can all share it.
"""

from __future__ import annotations

from provenance.attestation_verify.constants import (
    DEFAULT_MAX_BYTES,
    MAX_SIGNATURES,
    PAYLOAD_TYPE_IN_TOTO,
    PREDICATE_CYCLONEDX,
    PREDICATE_MODEL_SIGNING,
    PREDICATE_SLSA_PROVENANCE_V1,
    PREDICATE_SPDX,
    PREDICATE_TEST_RESULT,
    REGISTRY_PREDICATE_PREFIX,
    STATEMENT_TYPE_V1,
)
from provenance.attestation_verify.envelopes import (
    EnvelopeSignature,
    ParsedEnvelope,
    parse_envelope,
    parse_key_bundle,
)
from provenance.attestation_verify.errors import AttestationRejected, RejectionCode
from provenance.attestation_verify.keys import (
    generate_signing_key,
    key_id,
    public_pem,
    sign_statement,
    signer_from_pem,
)
from provenance.attestation_verify.signatures import TrustedKeys, verify_envelope
from provenance.attestation_verify.sigstore_bundles import SigstoreResult, verify_sigstore_bundle
from provenance.attestation_verify.statement import check_predicate_type

__all__ = [
    "DEFAULT_MAX_BYTES",
    "MAX_SIGNATURES",
    "PAYLOAD_TYPE_IN_TOTO",
    "PREDICATE_CYCLONEDX",
    "PREDICATE_MODEL_SIGNING",
    "PREDICATE_SLSA_PROVENANCE_V1",
    "PREDICATE_SPDX",
    "PREDICATE_TEST_RESULT",
    "REGISTRY_PREDICATE_PREFIX",
    "STATEMENT_TYPE_V1",
    "AttestationRejected",
    "EnvelopeSignature",
    "ParsedEnvelope",
    "RejectionCode",
    "SigstoreResult",
    "TrustedKeys",
    "check_predicate_type",
    "generate_signing_key",
    "key_id",
    "parse_envelope",
    "parse_key_bundle",
    "public_pem",
    "sign_statement",
    "signer_from_pem",
    "verify_envelope",
    "verify_sigstore_bundle",
]
