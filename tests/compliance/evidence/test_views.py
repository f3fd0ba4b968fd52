"""The evidence pages: asking for a bundle, following its build, sharing it with an auditor."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from unittest import mock

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from compliance import tasks
from compliance.choices import EvidenceStatus
from compliance.models import AuditorGrant, EvidenceBundle
from registry.models import ModelVersion
from tests.conftest import make_user

pytestmark = pytest.mark.django_db


def signed_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_a_compliance_officer_asks_and_follows_the_build(
    personas: dict[str, User],
    fraud: ModelVersion,
    django_capture_on_commit_callbacks: Any,
) -> None:
    client = signed_in(personas["dave"])
    page = client.get("/governance/evidence/")
    assert page.status_code == 200
    assert b"Build bundle" in page.content
    with (
        mock.patch.object(tasks.evidence_build, "delay") as delay,
        django_capture_on_commit_callbacks(execute=True),
    ):
        asked = client.post(
            "/governance/evidence/", {"scope": "model_version", "model": "fraud", "version": "1"}
        )
    bundle = EvidenceBundle.objects.get()
    assert asked.status_code == 302
    assert asked["Location"] == f"/governance/evidence/{bundle.pk}/"
    delay.assert_called_once_with(bundle.pk)
    building = client.get(f"/governance/evidence/{bundle.pk}/")
    assert b'http-equiv="refresh"' in building.content
    assert b"<progress" in building.content

    tasks.evidence_build(bundle.pk)
    bundle.refresh_from_db()
    ready = client.get(f"/governance/evidence/{bundle.pk}/")
    assert b'http-equiv="refresh"' not in ready.content
    assert bundle.sha256.encode() in ready.content
    assert b'id="download"' in ready.content


def test_a_refused_request_says_why_and_keeps_nothing(
    personas: dict[str, User],
    fraud: ModelVersion,
) -> None:
    page = signed_in(personas["bob"]).post(
        "/governance/evidence/", {"scope": "model_version", "model": "fraud", "version": "1"},
        follow=True,
    )  # fmt: skip
    assert b"only a Compliance Officer" in page.content
    assert not EvidenceBundle.objects.exists()


def test_a_failed_build_can_be_retried(personas: dict[str, User], fraud: ModelVersion) -> None:
    bundle = EvidenceBundle.objects.create(
        scope="model_version",
        version=fraud,
        status=EvidenceStatus.FAILED,
        error="RuntimeError: disk full",
        requested_by=personas["dave"],
        requested_by_name="dave",
        requested_at=timezone.now(),
    )
    client = signed_in(personas["dave"])
    page = client.get(f"/governance/evidence/{bundle.pk}/")
    assert b"disk full" in page.content
    with mock.patch.object(tasks.evidence_build, "delay"):
        client.post(f"/governance/evidence/{bundle.pk}/retry")
    bundle.refresh_from_db()
    assert bundle.status == EvidenceStatus.QUEUED


def test_access_is_granted_and_revoked_on_the_page(
    personas: dict[str, User],
    fraud: ModelVersion,
) -> None:
    from tests.compliance.evidence.test_bundles import build_bundle

    bundle = build_bundle(personas["dave"], scope="model_version", model="fraud", version=1)
    auditor = make_user("ursula")
    client = signed_in(personas["dave"])
    page = client.get("/governance/evidence/auditors/")
    assert b"ursula" in page.content
    assert b"bob" not in page.content  # holds a role: not an auditor candidate
    until = (timezone.now() + timedelta(days=5)).strftime("%Y-%m-%dT%H:%M")
    client.post(
        "/governance/evidence/auditors/",
        {"auditor": auditor.pk, "bundles": [bundle.pk], "expires_at": until, "reason": "SOC 2"},
    )
    grant = AuditorGrant.objects.get()
    assert list(grant.bundles.all()) == [bundle]
    assert signed_in(auditor).get(f"/governance/evidence/{bundle.pk}/").status_code == 200
    client.post(f"/governance/evidence/auditors/{grant.pk}/revoke", {"reason": "done"})
    assert signed_in(auditor).get(f"/governance/evidence/{bundle.pk}/").status_code == 404
