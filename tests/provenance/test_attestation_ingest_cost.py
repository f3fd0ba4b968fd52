"""What one upload costs: each table read once, no lookup of held records for a new envelope,
and the outcomes the cheaper path must keep (an envelope held is still answered as held)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from provenance.attestation_verify import (
    PREDICATE_SLSA_PROVENANCE_V1,
    PREDICATE_TEST_RESULT,
    generate_signing_key,
    sign_statement,
    signer_from_pem,
)
from provenance.log_format import Actor
from provenance.models import (
    Artifact,
    ArtifactKind,
    Attestation,
    LineageEdge,
    LineageNode,
    LogEntry,
    NodeKind,
    TrustedSigner,
)
from provenance.services import lineage as lineage_service
from provenance.services import trusted_signer_add, version_node_ensure
from provenance.services.attestations import AttestationRefused, attestation_ingest
from registry.models import ModelVersion, RegisteredModel
from registry.services import attestation_submit
from tests.provenance.test_lineage import dependency, provenance

pytestmark = pytest.mark.django_db
ACTOR = Actor.system("test")
MODEL = "ab" * 32
DATASET = "cd" * 32
UNKNOWN_DATASET = "ef" * 32
CODE = "12" * 32
postgres_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="the one-statement path is PostgreSQL's"
)


@pytest.fixture
def pipeline_key() -> Any:
    private_pem, public_key = generate_signing_key()
    trusted_signer_add(
        name="pipeline",
        public_key=public_key,
        predicate_types=[PREDICATE_SLSA_PROVENANCE_V1, PREDICATE_TEST_RESULT],
        actor=ACTOR,
    )
    return signer_from_pem(private_pem)


@pytest.fixture
def hashed() -> Artifact:
    now = timezone.now()
    model = Artifact.objects.create(
        digest=MODEL, kind=ArtifactKind.MODEL, name="fraud/1", size=1, created_at=now
    )
    Artifact.objects.create(
        digest=DATASET, kind=ArtifactKind.DATASET, name="train", size=0, created_at=now
    )
    version = ModelVersion.objects.create(
        registered_model=RegisteredModel.objects.create(name="fraud"),
        version=1,
        model_artifact=model,
    )
    version_node_ensure(name="fraud", version=version.version, artifact=model)
    return model


def training(number: int) -> dict[str, Any]:
    return provenance(
        [("fraud/1", MODEL)],
        invocation=f"run-{number}",
        dependencies=[
            dependency(DATASET, "train", "dataset"),
            dependency(UNKNOWN_DATASET, "elsewhere", "dataset"),
            dependency(CODE, "git+https://git.example/fraud", "code"),
        ],
    )


def evaluation(number: int) -> dict[str, Any]:
    return {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "fraud/1", "digest": {"sha256": MODEL}}],
        "predicateType": PREDICATE_TEST_RESULT,
        "predicate": {"result": "PASSED", "configuration": [{"name": f"eval-{number}"}]},
    }


def submit(raw: bytes) -> Any:
    return attestation_submit(raw=raw, media_type="application/json", actor=ACTOR)


def statements_on(captured: CaptureQueriesContext, table: str) -> list[str]:
    return [q["sql"] for q in captured.captured_queries if f'"{table}"' in q["sql"]] + [
        q["sql"]
        for q in captured.captured_queries
        if f" {table} " in q["sql"] and f'"{table}"' not in q["sql"]
    ]


@pytest.mark.parametrize("make", [training, evaluation])
def test_a_new_envelope_is_not_looked_up_and_its_artifacts_are_read_once(
    pipeline_key: Any, hashed: Artifact, make: Any
) -> None:
    raw = sign_statement(make(1), pipeline_key)

    with CaptureQueriesContext(connection) as captured:
        intake = submit(raw)

    assert intake.created
    reads_of_held = [
        sql
        for sql in statements_on(captured, "provenance_attestation")
        if sql.lstrip().startswith("SELECT")
    ]
    assert reads_of_held == []
    artifact_reads = [
        sql
        for sql in statements_on(captured, "provenance_artifact")
        if sql.lstrip().startswith("SELECT") and "registry_modelversion" not in sql
    ]
    assert len(artifact_reads) == 1, artifact_reads
    assert {(str(e.upstream), e.relation) for e in LineageEdge.objects.all()} >= {
        ("model_version:fraud/1", "evaluated-by")
        if make is evaluation
        else ("run:run-1", "produced")
    }


def test_a_provenance_names_its_known_and_unknown_dependencies_as_before(
    pipeline_key: Any, hashed: Artifact
) -> None:
    submit(sign_statement(training(1), pipeline_key))

    trained_on = LineageEdge.objects.filter(relation="trained-on").select_related("upstream")
    by_key = {edge.upstream.key: edge.upstream for edge in trained_on}
    assert set(by_key) == {f"sha256:{DATASET}", f"sha256:{UNKNOWN_DATASET}"}
    assert by_key[f"sha256:{DATASET}"].artifact is not None
    assert by_key[f"sha256:{DATASET}"].artifact.digest == DATASET  # type: ignore[union-attr]
    assert by_key[f"sha256:{UNKNOWN_DATASET}"].artifact is None  # not trusted to register it
    assert not Artifact.objects.filter(digest__in=[UNKNOWN_DATASET, CODE]).exists()


def test_an_envelope_held_passing_every_check_again_is_answered_as_held_and_logged_once(
    pipeline_key: Any, hashed: Artifact
) -> None:
    raw = sign_statement(evaluation(1), pipeline_key)
    first = submit(raw)

    again = submit(raw)

    assert (first.created, again.created) == (True, False)
    assert again.attestation.pk == first.attestation.pk
    assert [s.artifact.digest for s in again.subjects] == [MODEL]
    assert Attestation.objects.count() == 1
    assert LineageEdge.objects.count() == 1
    assert LogEntry.objects.filter(event_type="attestation.accepted").count() == 1


def test_an_envelope_held_is_answered_as_held_even_once_its_signer_is_distrusted(
    pipeline_key: Any, hashed: Artifact
) -> None:
    raw = sign_statement(evaluation(1), pipeline_key)
    first = submit(raw)
    TrustedSigner.objects.filter(name="pipeline").update(active=False)

    again = submit(raw)

    assert not again.created
    assert again.attestation.pk == first.attestation.pk
    assert not LogEntry.objects.filter(event_type="attestation.rejected").exists()


def test_a_new_envelope_from_a_distrusted_signer_is_still_refused_and_logged(
    pipeline_key: Any, hashed: Artifact
) -> None:
    submit(sign_statement(evaluation(1), pipeline_key))
    TrustedSigner.objects.filter(name="pipeline").update(active=False)

    with pytest.raises(AttestationRefused) as refused:
        submit(sign_statement(evaluation(2), pipeline_key))

    assert refused.value.code == "untrusted_signer"
    assert Attestation.objects.count() == 1
    rejected = LogEntry.objects.get(event_type="attestation.rejected")
    assert json.loads(bytes(rejected.entry))["after"] == {"code": "untrusted_signer"}


@postgres_only
def test_nodes_are_found_and_the_missing_created_in_one_statement(
    pipeline_key: Any, hashed: Artifact
) -> None:
    dataset = Artifact.objects.get(digest=DATASET)
    existing = LineageNode.objects.create(
        kind=NodeKind.DATASET, key=f"sha256:{DATASET}", label="train", created_at=timezone.now()
    )
    specs = [
        lineage_service._Spec(NodeKind.DATASET, f"sha256:{DATASET}", "other", dataset),
        lineage_service._Spec(
            NodeKind.RUN, "run-9", "run-9", attributes={"builders": ["ci"]}, builder="ci"
        ),
    ]

    with CaptureQueriesContext(connection) as captured:
        nodes = lineage_service._nodes_found_or_created(specs)

    assert len(captured.captured_queries) == 1
    assert nodes[(NodeKind.DATASET, f"sha256:{DATASET}")].pk == existing.pk
    run = nodes[(NodeKind.RUN, "run-9")]
    assert (run.label, run.attributes, run.artifact_id) == ("run-9", {"builders": ["ci"]}, None)
    assert LineageNode.objects.get(kind=NodeKind.RUN, key="run-9").attributes == {
        "builders": ["ci"]
    }
    assert LineageNode.objects.filter(key=f"sha256:{DATASET}").count() == 1


@postgres_only
def test_a_node_the_statement_leaves_out_is_found_the_portable_way(
    pipeline_key: Any, hashed: Artifact, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A run node a concurrent ingest committed after the statement's snapshot: skipped by its
    # INSERT and unseen by its SELECT.
    run = LineageNode.objects.create(
        kind=NodeKind.RUN, key="run-1", label="run-1", created_at=timezone.now()
    )
    found_or_created = lineage_service._nodes_found_or_created

    def without_run(specs: list[Any]) -> dict[tuple[str, str], LineageNode]:
        return {k: n for k, n in found_or_created(specs).items() if k != (NodeKind.RUN, "run-1")}

    monkeypatch.setattr(lineage_service, "_nodes_found_or_created", without_run)

    submit(sign_statement(training(1), pipeline_key))

    assert LineageNode.objects.filter(kind=NodeKind.RUN, key="run-1").count() == 1
    produced = LineageEdge.objects.get(relation="produced")
    assert produced.upstream_id == run.pk


def test_a_bundle_still_looks_up_held_envelopes_first(pipeline_key: Any, hashed: Artifact) -> None:
    from provenance.services.attestation_bundles import attestation_bundle_ingest

    raw = sign_statement(evaluation(1), pipeline_key)
    attestation_ingest(raw=raw, media_type="application/json", actor=ACTOR)
    TrustedSigner.objects.filter(name="pipeline").update(active=False)

    [line] = attestation_bundle_ingest(raw=raw + b"\n", actor=ACTOR)

    assert not isinstance(line.outcome, AttestationRefused)
    assert not line.outcome.created


@postgres_only
def test_one_attestation_and_its_subjects_are_stored_in_one_statement_as_the_orm_would(
    pipeline_key: Any, hashed: Artifact
) -> None:
    statement = evaluation(1)
    statement["subject"] = [
        {"name": "fraud/1", "digest": {"sha256": MODEL}},
        {"name": "train", "digest": {"sha256": DATASET}},
        {"name": "fraud/1 again", "digest": {"sha256": MODEL}},
    ]
    raw = sign_statement(statement, pipeline_key)

    with CaptureQueriesContext(connection) as captured:
        intake = submit(raw)

    inserts = [
        q["sql"]
        for q in captured.captured_queries
        if "INSERT INTO provenance_attestation" in q["sql"]
        or 'INSERT INTO "provenance_attestation' in q["sql"]
    ]
    assert len(inserts) == 1  # the attestation and its subjects together
    stored = Attestation.objects.get()
    assert stored.pk == intake.attestation.pk
    assert bytes(stored.envelope) == raw
    assert stored.statement == statement
    assert (stored.format, stored.predicate_type) == ("dsse", PREDICATE_TEST_RESULT)
    assert stored.signer is not None
    assert stored.signer.name == "pipeline"
    assert stored.signing_key is None
    assert stored.verification_status == "verified"
    assert stored.verification_problem == ""
    assert stored.received_at == intake.attestation.received_at == stored.verified_at
    assert sorted((s.pk, s.artifact.digest, s.name) for s in intake.subjects) == sorted(
        (s.pk, s.artifact.digest, s.name) for s in stored.subjects.select_related("artifact")
    )
    assert {s.artifact.digest: s.name for s in intake.subjects} == {
        MODEL: "fraud/1",
        DATASET: "train",
    }
    assert all(s.attestation_id == stored.pk for s in intake.subjects)
