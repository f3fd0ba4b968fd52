"""Reads of attestations and trusted signers."""

from __future__ import annotations

from typing import Any

from django.db.models import Q, QuerySet

from config.errors import NotFound
from provenance.models import Attestation, AttestationSubject, LineageNode, TrustedSigner
from provenance.predicates import PREDICATE_VERIFICATION
from provenance.selectors.lineage import MAX_DEPTH, lineage_graph
from provenance.selectors.lineage_visible import model_of_node
from provenance.visibility import Visibility


def latest_registry_statement(*, subject_name: str, predicate_type: str) -> dict[str, Any] | None:
    """The newest statement the registry itself signed about ``subject_name`` of that type."""
    found = (
        AttestationSubject.objects.filter(
            name=subject_name,
            attestation__predicate_type=predicate_type,
            attestation__signing_key__isnull=False,
        )
        .order_by("-attestation__received_at", "-attestation_id")
        .values_list("attestation__statement", flat=True)
        .first()
    )
    return dict(found) if found is not None else None


def attestations_filtered(
    *, signer: str | None = None, predicate_type: str | None = None
) -> QuerySet[Attestation]:
    """Every attestation, or those of one trusted signer (``registry``: those the registry
    signed itself) or one predicate type: what an operator re-verifies in bulk. A signer the
    registry has never trusted is NotFound (a misspelt name must not read as "none fail")."""
    attestations = Attestation.objects.all()
    if signer == REGISTRY_SIGNER:
        attestations = attestations.filter(signer__isnull=True)
    elif signer is not None:
        if not TrustedSigner.objects.filter(name=signer).exists():
            raise NotFound(f"no trusted signer {signer!r}", code="signer_not_found")
        attestations = attestations.filter(signer__name=signer)
    if predicate_type is not None:
        attestations = attestations.filter(predicate_type=predicate_type)
    return attestations


# How the registry's own signatures are named where signers are listed.
REGISTRY_SIGNER = "registry"


def attestations_about(*, digests: list[str]) -> QuerySet[Attestation]:
    """Every attestation with a subject among ``digests`` (sha256 hex)."""
    return (
        Attestation.objects.filter(subjects__artifact__digest__in=digests)
        .distinct()
        .select_related("signer", "signing_key")
    )


def attestations_behind(*, node: LineageNode, digest: str) -> list[Attestation]:
    """Every attestation a model version depends on: those proving any edge upstream of its
    node, and those about its artifact (evaluations, model.sig, observations) — not those
    naming the same files as another model's version, which are about that model."""
    graph = lineage_graph(start=[node], direction="upstream", depth=MAX_DEPTH)
    ids = {edge.attestation_id for edge in graph.edges}
    model = model_of_node(node.kind, node.key) or ""
    ids |= set(
        AttestationSubject.objects.filter(artifact__digest=digest)
        .filter(Q(named_model="") | Q(named_model=model))
        .values_list("attestation_id", flat=True)
    )
    return list(
        Attestation.objects.filter(pk__in=ids)
        .exclude(predicate_type=PREDICATE_VERIFICATION)  # outcomes of checks, not dependencies
        .select_related("signer", "signing_key")
        .order_by("received_at", "pk")
    )


def trusted_signers(*, visibility: Visibility) -> QuerySet[TrustedSigner]:
    """Whose signatures the registry accepts, for anyone holding a role (outsiders: none)."""
    if not visibility.has_role:
        return TrustedSigner.objects.none()
    return TrustedSigner.objects.order_by("name")
