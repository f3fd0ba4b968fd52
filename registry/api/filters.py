"""Query filters of the registry's lists (django-filter): each names its fields explicitly."""

from __future__ import annotations

import re

import django_filters
from django.db.models import Q, QuerySet

from provenance.models import (
    Attestation,
    AttestationFormat,
    AttestationSubject,
    VerificationStatus,
)
from registry.choices import AliasChangeSource, HashStatus, VersionStatus
from registry.models import AliasHistory, Dataset, ModelVersion, RegisteredModel, Run

_DIGEST = re.compile(r"(?:sha256:)?([0-9a-f]{64})")


def sha256_hex(value: str) -> str | None:
    """The hex of ``sha256:<hex>`` or of a bare ``<hex>``; None for anything else."""
    matched = _DIGEST.fullmatch(value.strip().lower())
    return matched.group(1) if matched else None


class ModelFilter(django_filters.FilterSet):  # type: ignore[misc]  # untyped library
    name = django_filters.CharFilter(lookup_expr="icontains", help_text="part of the name")
    deleted = django_filters.BooleanFilter(
        field_name="deleted_at", lookup_expr="isnull", exclude=True, help_text="deleted in MLflow"
    )

    class Meta:
        model = RegisteredModel
        fields = ["name", "deleted"]


class VersionFilter(django_filters.FilterSet):  # type: ignore[misc]  # untyped library
    status = django_filters.ChoiceFilter(choices=VersionStatus.choices)
    hash_status = django_filters.ChoiceFilter(choices=HashStatus.choices)
    alias = django_filters.CharFilter(
        field_name="aliases__alias", help_text="versions an alias points at now"
    )

    class Meta:
        model = ModelVersion
        fields = ["status", "hash_status", "alias"]


class RunFilter(django_filters.FilterSet):  # type: ignore[misc]  # untyped library
    user = django_filters.CharFilter(help_text="who ran it, as MLflow recorded")
    experiment_id = django_filters.CharFilter()
    status = django_filters.CharFilter(help_text="MLflow's run status, e.g. FINISHED")

    class Meta:
        model = Run
        fields = ["user", "experiment_id", "status"]


class DatasetFilter(django_filters.FilterSet):  # type: ignore[misc]  # untyped library
    name = django_filters.CharFilter(lookup_expr="icontains", help_text="part of the name")
    digest = django_filters.CharFilter(
        method="filter_digest", help_text="MLflow's digest, or the sha256 (`sha256:<hex>`)"
    )

    class Meta:
        model = Dataset
        fields = ["name", "digest"]

    def filter_digest(
        self, queryset: QuerySet[Dataset], name: str, value: str
    ) -> QuerySet[Dataset]:
        sha256 = sha256_hex(value)
        if sha256 is not None:
            return queryset.filter(Q(artifact__digest=sha256) | Q(digest=value))
        return queryset.filter(digest=value)


class AliasHistoryFilter(django_filters.FilterSet):  # type: ignore[misc]  # untyped library
    alias = django_filters.CharFilter()
    source = django_filters.ChoiceFilter(choices=AliasChangeSource.choices)

    class Meta:
        model = AliasHistory
        fields = ["alias", "source"]


class AttestationFilter(django_filters.FilterSet):  # type: ignore[misc]  # untyped library
    predicate_type = django_filters.CharFilter()
    subject = django_filters.CharFilter(
        method="filter_subject", help_text="a subject's digest, `sha256:<hex>` or `<hex>`"
    )
    signer = django_filters.CharFilter(
        method="filter_signer", help_text="a trusted signer's name, or `registry`"
    )
    verification_status = django_filters.ChoiceFilter(choices=VerificationStatus.choices)
    # Not ``format``: DRF reads that query parameter to choose a renderer.
    envelope_format = django_filters.ChoiceFilter(
        field_name="format", choices=AttestationFormat.choices
    )

    class Meta:
        model = Attestation
        fields = ["predicate_type", "subject", "signer", "verification_status", "envelope_format"]

    def filter_subject(
        self, queryset: QuerySet[Attestation], name: str, value: str
    ) -> QuerySet[Attestation]:
        sha256 = sha256_hex(value)
        if sha256 is None:
            return queryset.none()
        about = AttestationSubject.objects.filter(artifact__digest=sha256)
        return queryset.filter(pk__in=about.values("attestation_id"))

    def filter_signer(
        self, queryset: QuerySet[Attestation], name: str, value: str
    ) -> QuerySet[Attestation]:
        if value == "registry":
            return queryset.filter(signing_key__isnull=False)
        return queryset.filter(signer__name=value)
