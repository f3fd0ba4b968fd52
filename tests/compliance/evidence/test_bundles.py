"""Evidence bundles end to end: asked for, built by the task, downloaded, verified offline;
tampering with any file is caught; auditors see only what was shared, only until it ends."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from datetime import timedelta
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from django.contrib.auth.models import User
from django.core.files.storage import storages
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from django.utils import timezone

from compliance import tasks
from compliance.choices import EvidenceStatus
from compliance.evidence import services, verifier
from compliance.models import EvidenceBundle
from compliance.services import role_grant
from compliance.tokens import api_token_create
from config.errors import Conflict, Forbidden, InvalidInput, NotFound
from provenance import predicates
from provenance.attestation_verify import (
    PREDICATE_SLSA_PROVENANCE_V1,
    PREDICATE_TEST_RESULT,
)
from provenance.models import LogEntry
from registry.models import ModelVersion, RegisteredModel
from tests.compliance.evidence.conftest import MODEL, TRAINING_DATA
from tests.conftest import make_user

pytestmark = pytest.mark.django_db


def build_bundle(user: User, **scope: Any) -> EvidenceBundle:
    """Ask for a bundle and run the task the request queued, as a worker would."""
    with (
        mock.patch.object(tasks.evidence_build, "delay") as delay,
        mock.patch("django.db.transaction.on_commit", lambda fn, **_: fn()),
    ):
        bundle = services.evidence_request(user=user, **scope)
    delay.assert_called_once_with(bundle.pk)
    tasks.evidence_build(bundle.pk)
    bundle.refresh_from_db()
    return bundle


def zip_bytes(bundle: EvidenceBundle) -> bytes:
    with storages["evidence"].open(bundle.file_name, "rb") as handle:
        data: bytes = handle.read()
    return data


def verify_bytes(data: bytes, tmp_path: Path, name: str = "bundle.zip") -> Any:
    path = tmp_path / name
    path.write_bytes(data)
    return verifier.verify(path)


def rewrite(data: bytes, change: Any) -> bytes:
    """The zip with ``change(files)`` applied to its {name: bytes}."""
    with zipfile.ZipFile(io.BytesIO(data)) as source:
        files = {name: source.read(name) for name in source.namelist()}
    change(files)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as target:
        for name, content in files.items():
            target.writestr(name, content)
    return out.getvalue()


def events(kind: str) -> list[dict[str, Any]]:
    return [json.loads(bytes(e.entry)) for e in LogEntry.objects.filter(event_type=kind)]


# --- building --------------------------------------------------------------------------------


def test_a_version_bundle_is_built_signed_and_verifies_offline(
    personas: dict[str, User], fraud: ModelVersion, tmp_path: Path
) -> None:
    bundle = build_bundle(personas["dave"], scope="model_version", model="fraud", version=1)

    assert bundle.status == EvidenceStatus.READY, bundle.error
    data = zip_bytes(bundle)
    assert hashlib.sha256(data).hexdigest() == bundle.sha256
    assert len(data) == bundle.size
    names = set(zipfile.ZipFile(io.BytesIO(data)).namelist())
    for expected in (
        "README.txt",
        "manifest.json",
        "manifest.json.dsse",
        "verify.py",
        "report/evidence-report.pdf",
        "report/evidence-report.html",
        "oscal/assessment-plan.json",
        "oscal/assessment-results.json",
        "model/ml-bom.cdx.json",
        "model/model-card.md",
        "json/versions.json",
        "json/approvals.json",
        "json/incidents.json",
        "attestations/index.json",
        "log/entries.jsonl",
        "log/checkpoint.txt",
        "log/inclusion-proofs.jsonl",
        "log/consistency-proof.json",
        "keys/registry-keys.json",
        "keys/trusted-signers.json",
        "keys/log-key.vkey",
    ):
        assert expected in names
    report = verify_bytes(data, tmp_path)
    assert report.passed, report.lines

    archive = zipfile.ZipFile(io.BytesIO(data))
    index = json.loads(archive.read("attestations/index.json"))
    kinds = {row["predicate_type"] for row in index}
    assert {
        PREDICATE_SLSA_PROVENANCE_V1,
        PREDICATE_TEST_RESULT,
        predicates.PREDICATE_APPROVAL,
    } <= kinds
    versions = json.loads(archive.read("json/versions.json"))
    assert versions[0]["model_digest"] == MODEL
    assert versions[0]["datasets"] == [TRAINING_DATA]
    datasets = json.loads(archive.read("json/datasets.json"))
    assert [(d["digest"], d["has_provenance"]) for d in datasets] == [(TRAINING_DATA, True)]
    approvals = json.loads(archive.read("json/approvals.json"))
    assert [a["name"] for a in approvals[0]["approvals"]] == ["bob", "carol"]
    entries = archive.read("log/entries.jsonl").splitlines()
    types = {json.loads(line)["type"] for line in entries}
    assert {"promotion.requested", "promotion.approved", "attestation.accepted"} <= types
    assert "evidence.requested" not in types  # about the bundle, not the version
    [generated] = events("evidence.generated")
    assert generated["after"]["sha256"] == bundle.sha256
    assert generated["evidence"] == [f"sha256:{bundle.sha256}"]


def test_rebuilding_gives_the_same_bytes(personas: dict[str, User], fraud: ModelVersion) -> None:
    bundle = build_bundle(personas["dave"], scope="model_version", model="fraud", version=1)
    first = zip_bytes(bundle)
    EvidenceBundle.objects.filter(pk=bundle.pk).update(status=EvidenceStatus.QUEUED)
    tasks.evidence_build(bundle.pk)
    bundle.refresh_from_db()
    assert zip_bytes(bundle) == first


def test_a_later_bundle_proves_the_log_only_grew(
    personas: dict[str, User], fraud: ModelVersion, tmp_path: Path
) -> None:
    first = build_bundle(personas["dave"], scope="model_version", model="fraud", version=1)
    second = build_bundle(personas["dave"], scope="model_version", model="fraud", version=1)
    archive = zipfile.ZipFile(io.BytesIO(zip_bytes(second)))
    proof = json.loads(archive.read("log/consistency-proof.json"))
    assert first.checkpoint is not None
    assert second.checkpoint is not None
    assert proof["previous_bundle"] == first.pk
    assert proof["first"] == first.checkpoint.tree_size < proof["second"]
    assert proof["previous_checkpoint"] == first.checkpoint.note
    assert verify_bytes(zip_bytes(second), tmp_path).passed


def test_a_model_bundle_over_a_period_and_the_inventory(
    personas: dict[str, User], fraud: ModelVersion, tmp_path: Path
) -> None:
    now = timezone.now()
    period = {"period_start": now - timedelta(days=1), "period_end": now + timedelta(days=1)}
    model = build_bundle(personas["dave"], scope="registered_model", model="fraud", **period)
    inventory = build_bundle(personas["dave"], scope="inventory", **period)
    for bundle in (model, inventory):
        assert bundle.status == EvidenceStatus.READY, bundle.error
        assert verify_bytes(zip_bytes(bundle), tmp_path, f"{bundle.pk}.zip").passed
    entries = zipfile.ZipFile(io.BytesIO(zip_bytes(inventory))).read("log/entries.jsonl")
    assert b'"role_assignment.granted"' in entries or b"role" in entries


# --- tampering -----------------------------------------------------------------------------------


@pytest.fixture
def built(personas: dict[str, User], fraud: ModelVersion) -> bytes:
    return zip_bytes(
        build_bundle(personas["dave"], scope="model_version", model="fraud", version=1)
    )


def test_one_flipped_byte_in_any_file_is_caught_and_named(built: bytes, tmp_path: Path) -> None:
    names = zipfile.ZipFile(io.BytesIO(built)).namelist()
    assert len(names) > 20
    for name in names:

        def flip(files: dict[str, bytes], name: str = name) -> None:
            content = bytearray(files[name])
            content[len(content) // 2] ^= 0x01
            files[name] = bytes(content)

        report = verify_bytes(rewrite(built, flip), tmp_path)
        assert not report.passed, name
        assert name in report.first_failure.file, (name, report.failures)


def test_a_file_added_or_removed_is_caught(built: bytes, tmp_path: Path) -> None:
    added = verify_bytes(rewrite(built, lambda f: f.update({"json/extra.json": b"{}"})), tmp_path)
    assert not added.passed
    assert added.first_failure.file == "json/extra.json"
    removed = verify_bytes(rewrite(built, lambda f: f.pop("json/incidents.json")), tmp_path)
    assert not removed.passed
    assert removed.first_failure.file == "json/incidents.json"


def test_a_swapped_attestation_is_caught(built: bytes, tmp_path: Path) -> None:
    def swap(files: dict[str, bytes]) -> None:
        envelopes = sorted(n for n in files if n.endswith(".intoto.jsonl"))
        files[envelopes[0]], files[envelopes[1]] = files[envelopes[1]], files[envelopes[0]]

    report = verify_bytes(rewrite(built, swap), tmp_path)
    assert not report.passed
    assert report.first_failure.file.endswith(".intoto.jsonl")


def test_the_management_command_verifies_a_zip(built: bytes, tmp_path: Path) -> None:
    good = tmp_path / "good.zip"
    good.write_bytes(built)
    out = io.StringIO()
    call_command("verify_evidence", str(good), stdout=out)
    assert "manifest" in out.getvalue()
    bad = tmp_path / "bad.zip"
    bad.write_bytes(rewrite(built, lambda f: f.update({"README.txt": b"trust me"})))
    with pytest.raises(CommandError, match=r"README\.txt"):
        call_command("verify_evidence", str(bad), stdout=io.StringIO())


# --- who may ask, see, share --------------------------------------------------------------------


def test_only_compliance_officers_ask_for_evidence(
    personas: dict[str, User], fraud: ModelVersion, outsider: User
) -> None:
    with pytest.raises(Forbidden) as refused:
        services.evidence_request(
            user=personas["bob"], scope="model_version", model="fraud", version=1
        )
    assert refused.value.code == "not_compliance_officer"
    # Who may not even see the model is told it does not exist, as for a model that does not.
    with pytest.raises(NotFound) as unseen:
        services.evidence_request(user=outsider, scope="model_version", model="fraud", version=1)
    assert unseen.value.code == "model_not_found"
    assert not EvidenceBundle.objects.exists()


@pytest.mark.parametrize(
    ("scope", "code", "error"),
    [
        ({"scope": "model_version", "model": "fraud"}, "version_required", InvalidInput),
        ({"scope": "model_version", "model": "nope", "version": 1}, "model_not_found", NotFound),
        ({"scope": "registered_model", "model": "fraud"}, "period_required", InvalidInput),
        ({"scope": "inventory", "version": 1}, "version_not_allowed", InvalidInput),
        ({"scope": "everything"}, "invalid_scope", InvalidInput),
    ],
)
def test_bad_requests_are_refused(
    personas: dict[str, User], fraud: ModelVersion, scope: dict[str, Any], code: str, error: Any
) -> None:
    with pytest.raises(error) as refused:
        services.evidence_request(user=personas["dave"], **scope)
    assert refused.value.code == code
    assert not EvidenceBundle.objects.exists()


def test_a_failed_build_keeps_nothing_and_says_why(
    personas: dict[str, User], fraud: ModelVersion, settings: Any
) -> None:
    with (
        mock.patch("compliance.evidence.build._write_renderings", side_effect=RuntimeError("boom")),
        pytest.raises(RuntimeError),
    ):
        build_bundle(personas["dave"], scope="model_version", model="fraud", version=1)
    bundle = EvidenceBundle.objects.get()
    assert bundle.status == EvidenceStatus.FAILED
    assert "boom" in bundle.error
    assert bundle.file_name == ""
    location = Path(settings.STORAGES["evidence"]["OPTIONS"]["location"])
    assert not location.exists() or not any(location.iterdir())
    assert events("evidence.failed")


def test_auditors_see_what_was_shared_until_it_ends(
    personas: dict[str, User], fraud: ModelVersion
) -> None:
    bundle = build_bundle(personas["dave"], scope="model_version", model="fraud", version=1)
    auditor = make_user("ursula")
    client = Client()
    client.force_login(auditor)
    assert client.get(f"/governance/evidence/{bundle.pk}/").status_code == 404

    grant = services.auditor_grant(
        granted_by=personas["dave"],
        auditor=auditor,
        bundles=[bundle],
        expires_at=timezone.now() + timedelta(days=7),
        reason="2026 SOC 2 audit",
    )
    page = client.get(f"/governance/evidence/{bundle.pk}/")
    assert page.status_code == 200
    download = client.get(f"/governance/evidence/{bundle.pk}/download")
    assert download.status_code == 200
    assert hashlib.sha256(b"".join(download.streaming_content)).hexdigest() == bundle.sha256  # type: ignore[attr-defined]
    used = [e["after"]["action"] for e in events("auditor.access_used")]
    assert used == ["view", "download"]
    assert events("auditor.access_granted")[0]["after"]["bundles"] == [bundle.pk]

    EvidenceBundle.objects.filter(pk=bundle.pk)  # the grant ends by itself
    grant.expires_at = timezone.now() - timedelta(seconds=1)
    grant.granted_at = grant.expires_at - timedelta(days=1)
    grant.save()
    assert client.get(f"/governance/evidence/{bundle.pk}/").status_code == 404
    assert client.get(f"/governance/evidence/{bundle.pk}/download").status_code == 404


def test_auditor_grants_are_checked(personas: dict[str, User], fraud: ModelVersion) -> None:
    bundle = build_bundle(personas["dave"], scope="model_version", model="fraud", version=1)
    later = timezone.now() + timedelta(days=7)
    with pytest.raises(InvalidInput) as with_role:
        services.auditor_grant(
            granted_by=personas["dave"], auditor=personas["bob"], bundles=[bundle],
            expires_at=later, reason="audit",
        )  # fmt: skip
    assert with_role.value.code == "auditor_not_external"
    auditor = make_user("ursula")
    with pytest.raises(Forbidden):
        services.auditor_grant(
            granted_by=personas["bob"], auditor=auditor, bundles=[bundle], expires_at=later,
            reason="audit",
        )  # fmt: skip
    with pytest.raises(InvalidInput) as too_long:
        services.auditor_grant(
            granted_by=personas["dave"], auditor=auditor, bundles=[bundle],
            expires_at=timezone.now() + timedelta(days=400), reason="audit",
        )  # fmt: skip
    assert too_long.value.code == "invalid_expiry"
    grant = services.auditor_grant(
        granted_by=personas["dave"], auditor=auditor, bundles=[bundle], expires_at=later,
        reason="audit",
    )  # fmt: skip
    services.auditor_revoke(grant=grant, user=personas["dave"], reason="audit over")
    with pytest.raises(Conflict):
        services.auditor_revoke(grant=grant, user=personas["dave"])
    client = Client()
    client.force_login(auditor)
    assert client.get(f"/governance/evidence/{bundle.pk}/").status_code == 404
    assert events("auditor.access_revoked")


def test_a_model_level_officer_sees_only_their_models_bundles(
    personas: dict[str, User], fraud: ModelVersion
) -> None:
    bundle = build_bundle(personas["dave"], scope="model_version", model="fraud", version=1)
    other = RegisteredModel.objects.create(name="churn")
    officer = make_user("olga")
    from compliance.models import SecurityRole

    role_grant(
        user=officer,
        role=SecurityRole.objects.get(key="compliance_officer"),
        registered_model=other,
        acting_user=None,
        actor_name="test",
    )
    client = Client()
    client.force_login(officer)
    assert client.get(f"/governance/evidence/{bundle.pk}/").status_code == 404
    assert client.get("/api/v1/evidence").json()["results"] == []
    for version in (1, 99):  # a version that exists answers as one that does not
        with pytest.raises(NotFound) as unseen:
            services.evidence_request(
                user=officer, scope="model_version", model="fraud", version=version
            )
        assert unseen.value.code == "model_not_found"


# --- the API -------------------------------------------------------------------------------


def test_the_api_asks_follows_and_downloads(
    personas: dict[str, User], fraud: ModelVersion, django_capture_on_commit_callbacks: Any
) -> None:
    secret = api_token_create(
        user=personas["dave"],
        name="audit-bot",
        scopes=["read", "evidence"],
        expires_in_days=7,
        acting_user=None,
    ).secret
    read_only = api_token_create(
        user=personas["dave"], name="reader", scopes=["read"], expires_in_days=7, acting_user=None
    ).secret
    client = Client(headers={"authorization": f"Bearer {secret}"})
    body = {"scope": "model_version", "model": "fraud", "version": 1}
    with mock.patch.object(tasks.evidence_build, "delay") as delay:
        refused = Client(headers={"authorization": f"Bearer {read_only}"}).post(
            "/api/v1/evidence", body, content_type="application/json"
        )
        assert refused.status_code == 403
        assert refused.json()["code"] == "token_scope_missing"
        with django_capture_on_commit_callbacks(execute=True):
            created = client.post("/api/v1/evidence", body, content_type="application/json")
    assert created.status_code == 202, created.content
    bundle_id = created.json()["id"]
    assert created.json()["status"] == "queued"
    not_ready = client.get(f"/api/v1/evidence/{bundle_id}/download")
    assert not_ready.status_code == 409
    assert not_ready.json()["code"] == "evidence_not_ready"
    delay.assert_called_once_with(bundle_id)
    tasks.evidence_build(bundle_id)
    detail = client.get(f"/api/v1/evidence/{bundle_id}").json()
    assert detail["status"] == "ready"
    assert detail["progress"]["step"] == "ready"
    download = client.get(detail["download_url"])
    assert download.status_code == 200
    assert download["Content-Type"] == "application/zip"
    content = b"".join(download.streaming_content)  # type: ignore[attr-defined]
    assert hashlib.sha256(content).hexdigest() == detail["sha256"]
    assert len(events("evidence.downloaded")) == 1
    assert client.get("/api/v1/evidence/999999").status_code == 404
