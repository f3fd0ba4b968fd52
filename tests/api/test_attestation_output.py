"""A page of attestations is written by hand (registry/api/serializers.py ``AttestationOutput``)
to exactly what DRF writes from the declared fields."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import NoReverseMatch
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory

from provenance.models import Attestation, AttestationSubject
from provenance.visibility import Visibility
from registry import visible_selectors
from registry.api.serializers import SENTINEL, AttestationOutput, LinkTemplate, link
from tests.api.conftest import World, signed_in

pytestmark = pytest.mark.django_db


def drf_writes(serializer: AttestationOutput, attestation: Attestation) -> list[tuple[str, Any]]:
    """DRF's generic writing of the declared fields (what the hand-written one stands for)."""
    return list(serializers.Serializer.to_representation(serializer, attestation).items())


def test_each_attestation_is_written_as_drf_writes_it(world: World) -> None:
    # Every shape the page can hold: signed by a pipeline or by the registry, verified or not,
    # one subject or several, a timestamp with and without microseconds.
    some = world.attestations["train-fraud"]
    Attestation.objects.filter(pk=some.pk).update(
        verified_at=None, received_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    )
    other = AttestationSubject.objects.exclude(attestation=some).first()
    assert other is not None
    AttestationSubject.objects.create(attestation=some, artifact=other.artifact, name="second")
    request = Request(APIRequestFactory().get("/api/v1/attestations"))
    page = list(visible_selectors.attestations_visible(visibility=Visibility.unrestricted()))
    assert any(a.signer is None for a in page)
    assert any(a.signer is not None for a in page)
    assert any(len(visible_selectors.subjects_of(a)) > 1 for a in page)
    assert any(a.verified_at is None for a in page)
    assert any(a.verified_at for a in page)

    written = AttestationOutput(page, many=True, context={"request": request}).data  # type: ignore[arg-type]
    one = AttestationOutput(context={"request": request})

    assert [list(row.items()) for row in written] == [drf_writes(one, a) for a in page]


def test_the_list_endpoint_answers_the_same(client: Client, world: World, reader: User) -> None:
    body = signed_in(client, reader).get("/api/v1/attestations").json()

    request = Request(APIRequestFactory().get("/api/v1/attestations"))
    one = AttestationOutput(context={"request": request})
    by_digest = {
        a.envelope_digest: dict(drf_writes(one, a))
        for a in visible_selectors.attestations_visible(visibility=Visibility.unrestricted())
    }
    assert body["results"]
    for row in body["results"]:
        assert row == by_digest[row["envelope_digest"]]


def test_a_page_reads_its_subjects_in_one_query_whatever_its_length(
    client: Client, world: World, reader: User
) -> None:
    signed_in(client, reader)
    with CaptureQueriesContext(connection) as one:
        assert len(client.get("/api/v1/attestations?page_size=1").json()["results"]) == 1
    with CaptureQueriesContext(connection) as page:
        assert len(client.get("/api/v1/attestations?page_size=50").json()["results"]) > 2

    assert len(page.captured_queries) == len(one.captured_queries)


def test_subjects_of_an_attestation_read_alone_are_those_read_with_a_page(world: World) -> None:
    some = world.attestations["train-fraud"]
    AttestationSubject.objects.create(
        attestation=some,
        artifact=AttestationSubject.objects.exclude(attestation=some).first().artifact,  # type: ignore[union-attr]
        name="second",
    )
    page = visible_selectors.attestations_visible(visibility=Visibility.unrestricted())
    with_page = next(a for a in page if a.pk == some.pk)
    alone = Attestation.objects.get(pk=some.pk)

    read = [(s.pk, s.name, s.artifact.digest) for s in visible_selectors.subjects_of(with_page)]
    queried = [(s.pk, s.name, s.artifact.digest) for s in visible_selectors.subjects_of(alone)]

    assert len(read) == 2
    assert read == queried


@pytest.mark.parametrize("value", ["ab12", "0" * 64, "a b", "é", "with/slash", "q?x=1"], ids=repr)
def test_a_link_template_gives_what_reverse_gives(value: str) -> None:
    request = Request(APIRequestFactory().get("/"))
    template = LinkTemplate(request, "api-attestation-detail", "envelope_digest")

    assert outcome(template, value) == outcome(
        lambda v: link(request, "api-attestation-detail", envelope_digest=v), value
    )
    assert SENTINEL not in outcome(template, value)


def outcome(make: Callable[[str], str], value: str) -> str:
    """The URL made, or the name of the exception raised instead (reverse() refuses some)."""
    try:
        return make(value)
    except NoReverseMatch as refused:
        return type(refused).__name__
