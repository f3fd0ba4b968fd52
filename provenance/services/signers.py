"""Trusted signers: the public keys and Sigstore identities whose attestations are accepted."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import transaction
from django.utils import timezone

from provenance.attestation_verify import key_id
from provenance.log_format import Actor, Event
from provenance.models import SignerKind, TrustedSigner
from provenance.services.log import log_append


@transaction.atomic
def trusted_signer_add(
    *,
    name: str,
    predicate_types: Sequence[str],
    actor: Actor,
    public_key: dict[str, Any] | None = None,
    identity: str = "",
    issuer: str = "",
    may_register_datasets: bool = False,
) -> TrustedSigner:
    """Trust a public key or a Sigstore identity for some predicate types (a logged event)."""
    kind = SignerKind.KEY if public_key is not None else SignerKind.SIGSTORE
    signer = TrustedSigner.objects.create(
        name=name,
        kind=kind,
        key_id=key_id(public_key) if public_key is not None else "",
        public_key=public_key,
        identity=identity,
        issuer=issuer,
        predicate_types=list(predicate_types),
        may_register_datasets=may_register_datasets,
        created_at=timezone.now(),
    )
    log_append(
        Event(
            event_type="trusted_signer.added",
            actor=actor,
            object_type="trusted_signer",
            object_id=name,
            after={
                "kind": kind,
                "key_id": signer.key_id,
                "identity": identity,
                "issuer": issuer,
                "predicate_types": list(predicate_types),
                "may_register_datasets": may_register_datasets,
            },
        )
    )
    return signer
