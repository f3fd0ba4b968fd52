"""Lineage derived from verified attestations, queried by recursive CTE; re-verification."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from config.errors import InvalidInput, NotFound
from provenance import predicates, selectors
from provenance.attestation_verify import (
    PREDICATE_MODEL_SIGNING,
    PREDICATE_SLSA_PROVENANCE_V1,
    PREDICATE_TEST_RESULT,
    RejectionCode,
    generate_signing_key,
    sign_statement,
    signer_from_pem,
)
from provenance.log_format import Actor
from provenance.model_manifest import sign_model
from provenance.models import (
    Artifact,
    ArtifactKind,
    Attestation,
    AttestationFormat,
    LineageEdge,
    LineageNode,
    LogEntry,
    NodeKind,
    TrustedSigner,
    VerificationStatus,
)
from provenance.services import (
    AttestationRefused,
    attestation_ingest,
    attestations_reverify,
    model_artifact_record,
    registry_attestation_issue,
    trusted_signer_add,
    version_node_ensure,
)

pytestmark = pytest.mark.django_db
ACTOR = Actor.system("test")
MODEL = "ab" * 32
RAW_DATA = "01" * 32
TRAINING_DATA = "02" * 32
BASE_MODEL = "03" * 32
CODE = "04" * 32


@pytest.fixture(autouse=True)
def _keys_in_tmp(settings: Any, tmp_path: Path) -> None:
    settings.VAR_DIR = tmp_path / "var"
    settings.ATTESTATION_SIGNING_KEY_FILE = ""


@pytest.fixture
def pipeline() -> Any:
    private_pem, public_key = generate_signing_key()
    trusted_signer_add(
        name="pipeline",
        public_key=public_key,
        predicate_types=[
            PREDICATE_SLSA_PROVENANCE_V1,
            PREDICATE_TEST_RESULT,
            PREDICATE_MODEL_SIGNING,
        ],
        may_register_datasets=True,
        actor=ACTOR,
    )
    return signer_from_pem(private_pem)


@pytest.fixture
def version_node() -> LineageNode:
    artifact = Artifact.objects.create(
        digest=MODEL, kind=ArtifactKind.MODEL, name="fraud/1", size=1, created_at=timezone.now()
    )
    return version_node_ensure(name="fraud", version=1, artifact=artifact)


def provenance(
    subjects: list[tuple[str, str]],
    *,
    invocation: str | None,
    dependencies: list[dict[str, Any]],
) -> dict[str, Any]:
    run_details: dict[str, Any] = {"builder": {"id": "https://ci.example/train"}}
    if invocation:
        run_details["metadata"] = {"invocationId": invocation}
    return predicates.statement(
        subjects=subjects,
        predicate_type=PREDICATE_SLSA_PROVENANCE_V1,
        predicate={
            "buildDefinition": {
                "buildType": "https://example.org/train/v1",
                "externalParameters": {},
                "resolvedDependencies": dependencies,
            },
            "runDetails": run_details,
        },
    )


def dependency(digest: str, name: str, kind: str | None = None) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": name, "digest": {"sha256": digest}}
    if kind:
        entry["annotations"] = {"kind": kind}
    return entry


def ingest(statement: dict[str, Any], signer: Any) -> Attestation:
    raw = sign_statement(statement, signer)
    return attestation_ingest(raw=raw, media_type="application/json", actor=ACTOR).attestation


def edges() -> set[tuple[str, str, str]]:
    return {
        (str(e.upstream), e.relation, str(e.downstream))
        for e in LineageEdge.objects.select_related("upstream", "downstream")
    }


@pytest.fixture
def full_chain(pipeline: Any, version_node: LineageNode) -> dict[str, Attestation]:
    """raw data -ETL-> training data -training run-> fraud/1 <- base model; an evaluation."""
    etl = ingest(
        provenance(
            [("transactions-clean", TRAINING_DATA)],
            invocation="etl-7",
            dependencies=[dependency(RAW_DATA, "s3://raw/transactions.csv")],
        ),
        pipeline,
    )
    training = ingest(
        provenance(
            [("fraud/1", MODEL)],
            invocation="run-1",
            dependencies=[
                dependency(TRAINING_DATA, "transactions-clean"),
                dependency(BASE_MODEL, "bert-base", kind="base_model"),
                dependency(CODE, "git+https://example.org/train", kind="code"),
            ],
        ),
        pipeline,
    )
    evaluation = ingest(
        predicates.statement(
            subjects=[("fraud/1", MODEL)],
            predicate_type=PREDICATE_TEST_RESULT,
            predicate={"result": "PASSED", "configuration": [{"name": "holdout-2026"}]},
        ),
        pipeline,
    )
    return {"etl": etl, "training": training, "evaluation": evaluation}


def test_edges_are_derived_from_each_predicate_type(full_chain: dict[str, Attestation]) -> None:
    evaluation = f"evaluation:{full_chain['evaluation'].envelope_digest}"
    assert edges() == {
        (f"dataset:sha256:{RAW_DATA}", "derived-from", "run:etl-7"),
        ("run:etl-7", "produced", f"dataset:sha256:{TRAINING_DATA}"),
        (f"dataset:sha256:{TRAINING_DATA}", "trained-on", "run:run-1"),
        (f"base_model:sha256:{BASE_MODEL}", "derived-from", "run:run-1"),
        ("run:run-1", "produced", "model_version:fraud/1"),
        ("model_version:fraud/1", "evaluated-by", evaluation),
    }
    assert not LineageNode.objects.filter(key=f"sha256:{CODE}").exists()


def test_every_edge_points_at_the_attestation_that_proves_it(
    full_chain: dict[str, Attestation],
) -> None:
    training = LineageEdge.objects.filter(attestation=full_chain["training"])
    assert {e.relation for e in training} == {"trained-on", "derived-from", "produced"}
    evaluation = LineageNode.objects.get(kind=NodeKind.EVALUATION)
    assert evaluation.attributes == {"result": "PASSED"}
    assert evaluation.label == "holdout-2026"


def test_datasets_named_as_dependencies_become_known_by_digest(
    full_chain: dict[str, Attestation],
) -> None:
    dataset = LineageNode.objects.get(kind=NodeKind.DATASET, key=f"sha256:{RAW_DATA}")
    assert dataset.artifact is not None
    assert dataset.artifact.kind == ArtifactKind.DATASET


def test_without_an_invocation_id_dependencies_point_at_the_subjects(
    pipeline: Any, version_node: LineageNode
) -> None:
    ingest(
        provenance(
            [("fraud/1", MODEL)], invocation=None, dependencies=[dependency(TRAINING_DATA, "d")]
        ),
        pipeline,
    )
    assert edges() == {(f"dataset:sha256:{TRAINING_DATA}", "trained-on", "model_version:fraud/1")}


def test_upstream_of_a_version_reaches_the_raw_data(
    full_chain: dict[str, Attestation], version_node: LineageNode
) -> None:
    graph = selectors.lineage_graph(start=[version_node], direction="upstream", depth=10)

    keys = {str(n): graph.depth_of[n.pk] for n in graph.nodes}
    assert keys == {
        "model_version:fraud/1": 0,
        "run:run-1": 1,
        f"dataset:sha256:{TRAINING_DATA}": 2,
        f"base_model:sha256:{BASE_MODEL}": 2,
        "run:etl-7": 3,
        f"dataset:sha256:{RAW_DATA}": 4,
    }
    assert len(graph.edges) == 5
    assert all(e.attestation.verification_status == "verified" for e in graph.edges)


def test_depth_bounds_the_walk(
    full_chain: dict[str, Attestation], version_node: LineageNode
) -> None:
    graph = selectors.lineage_graph(start=[version_node], direction="upstream", depth=1)
    assert {str(n) for n in graph.nodes} == {"model_version:fraud/1", "run:run-1"}


def test_a_walk_is_one_query_however_deep(
    full_chain: dict[str, Attestation], version_node: LineageNode
) -> None:
    with CaptureQueriesContext(connection) as shallow:
        selectors.lineage_graph(start=[version_node], direction="upstream", depth=1)
    with CaptureQueriesContext(connection) as deep:
        selectors.lineage_graph(start=[version_node], direction="upstream", depth=10)
    assert len(deep) == len(shallow)
    assert any("WITH RECURSIVE" in q["sql"] for q in deep.captured_queries)


def test_downstream_of_raw_data_reaches_the_evaluation(full_chain: dict[str, Attestation]) -> None:
    [raw] = selectors.lineage_node_resolve(f"sha256:{RAW_DATA}")
    graph = selectors.lineage_graph(start=[raw], direction="downstream", depth=10)
    assert {n.kind for n in graph.nodes} == {"dataset", "run", "model_version", "evaluation"}


def test_path_between_raw_data_and_the_version(
    full_chain: dict[str, Attestation], version_node: LineageNode
) -> None:
    raw = selectors.lineage_node_resolve(f"sha256:{RAW_DATA}")
    graph = selectors.lineage_path(source=raw, target=[version_node])

    assert [str(e.upstream) + ">" + str(e.downstream) for e in graph.edges] == [
        f"dataset:sha256:{RAW_DATA}>run:etl-7",
        f"run:etl-7>dataset:sha256:{TRAINING_DATA}",
        f"dataset:sha256:{TRAINING_DATA}>run:run-1",
        "run:run-1>model_version:fraud/1",
    ]
    reverse = selectors.lineage_path(source=[version_node], target=raw)
    assert len(reverse.edges) == 4
    base = selectors.lineage_node_resolve(f"base_model:sha256:{BASE_MODEL}")
    assert selectors.lineage_path(source=raw, target=base).edges == []


def test_impact_of_a_dataset_lists_versions_and_the_aliases_on_them_now(
    full_chain: dict[str, Attestation], version_node: LineageNode
) -> None:
    observe("fraud", 1, aliases=["production"])
    raw = selectors.lineage_node_resolve(f"sha256:{RAW_DATA}")

    impact = selectors.lineage_impact(start=raw)

    assert [n.key for n in impact.model_versions] == ["fraud/1"]
    assert [e.downstream.key for e in impact.aliases] == ["fraud@production"]
    observe("fraud", 1, aliases=[])
    assert selectors.lineage_impact(start=raw).aliases == []


def observe(name: str, version: int, *, aliases: list[str], digest: str = MODEL) -> Attestation:
    statement = predicates.observation_statement(
        observer="test",
        observed_at=timezone.now(),
        model_digest=digest,
        model_version={"name": name, "version": version, "runId": "", "aliases": aliases},
        run=None,
        tracking_uri="sqlite:///mlflow.db",
    )
    return registry_attestation_issue(statement=statement, actor=ACTOR)


def test_an_alias_moving_ends_its_edge_on_the_old_version(version_node: LineageNode) -> None:
    other = Artifact.objects.create(
        digest="cd" * 32, kind=ArtifactKind.MODEL, name="fraud/2", size=1, created_at=timezone.now()
    )
    version_node_ensure(name="fraud", version=2, artifact=other)
    observe("fraud", 1, aliases=["production", "champion"])

    observe("fraud", 2, aliases=["production"], digest=other.digest)

    active = {
        (e.upstream.key, e.downstream.key)
        for e in LineageEdge.objects.filter(relation="promoted-to", ended_at__isnull=True)
    }
    assert active == {("fraud/1", "fraud@champion"), ("fraud/2", "fraud@production")}
    ended = LineageEdge.objects.get(relation="promoted-to", ended_at__isnull=False)
    assert (ended.upstream.key, ended.downstream.key) == ("fraud/1", "fraud@production")


def test_registry_observations_are_signed_by_the_registry_key(version_node: LineageNode) -> None:
    attestation = observe("fraud", 1, aliases=[])

    assert attestation.signer is None
    assert attestation.signing_key is not None
    assert attestation.statement["subject"] == [{"name": "fraud/1", "digest": {"sha256": MODEL}}]
    assert LogEntry.objects.filter(event_type="attestation.issued").count() == 1
    assert attestations_reverify(attestations=[attestation], actor=ACTOR).ok


def test_pipelines_may_not_upload_the_registrys_own_predicate_types(
    version_node: LineageNode,
) -> None:
    private_pem, public_key = generate_signing_key()
    trusted_signer_add(
        name="forger",
        public_key=public_key,
        predicate_types=[predicates.PREDICATE_OBSERVATION],
        actor=ACTOR,
    )
    forged = predicates.observation_statement(
        observer="x",
        observed_at=timezone.now(),
        model_digest=MODEL,
        model_version={"name": "fraud", "version": 1, "aliases": ["production"]},
        run=None,
        tracking_uri="",
    )
    with pytest.raises(AttestationRefused) as refused:
        ingest(forged, signer_from_pem(private_pem))
    assert refused.value.code == RejectionCode.PREDICATE_NOT_ALLOWED
    assert not LineageEdge.objects.exists()


@pytest.mark.parametrize(
    ("ref", "error", "code"),
    [
        ("nonsense", InvalidInput, "lineage_bad_node"),
        ("planet:earth", InvalidInput, "lineage_bad_node"),
        ("model_version:", InvalidInput, "lineage_bad_node"),
        ("model_version:fraud/99", NotFound, "lineage_node_not_found"),
        ("sha256:" + "ee" * 32, NotFound, "lineage_node_not_found"),
    ],
)
def test_bad_node_references(ref: str, error: type[Exception], code: str) -> None:
    with pytest.raises(error) as raised:
        selectors.lineage_node_resolve(ref)
    assert getattr(raised.value, "code", None) == code


def test_a_model_digest_resolves_to_its_version(version_node: LineageNode) -> None:
    assert selectors.lineage_node_resolve(f"sha256:{MODEL}") == [version_node]
    assert selectors.lineage_node_resolve("model_version:fraud/1") == [version_node]


def test_depth_out_of_range_is_refused(version_node: LineageNode) -> None:
    for depth in (0, 51):
        with pytest.raises(InvalidInput):
            selectors.lineage_graph(start=[version_node], depth=depth)


def test_walks_terminate_on_a_cycle(pipeline: Any, version_node: LineageNode) -> None:
    # Two dataset builds that each claim the other as input: nonsense, but signed nonsense.
    a, b = "0a" * 32, "0b" * 32
    ingest(provenance([("a", a)], invocation="x", dependencies=[dependency(b, "b")]), pipeline)
    ingest(provenance([("b", b)], invocation="y", dependencies=[dependency(a, "a")]), pipeline)
    [start] = selectors.lineage_node_resolve(f"sha256:{a}")

    graph = selectors.lineage_graph(start=[start], direction="both", depth=50)

    assert {str(n) for n in graph.nodes} == {
        f"dataset:sha256:{a}",
        f"dataset:sha256:{b}",
        "run:x",
        "run:y",
    }


# --- re-verification ----------------------------------------------------------------------


def test_reverification_passes_for_untouched_attestations(
    full_chain: dict[str, Attestation],
) -> None:
    report = attestations_reverify(attestations=Attestation.objects.all(), actor=ACTOR)
    assert report.ok
    assert len(report.outcomes) == 3
    assert not LogEntry.objects.filter(event_type__startswith="attestation.verification").exists()


def test_a_distrusted_signer_fails_reverification_and_is_logged(
    full_chain: dict[str, Attestation],
) -> None:
    TrustedSigner.objects.update(active=False)

    report = attestations_reverify(attestations=Attestation.objects.all(), actor=ACTOR)

    assert len(report.failed) == 3
    assert "no longer trusted" in report.failed[0].problem
    assert set(Attestation.objects.values_list("verification_status", flat=True)) == {
        VerificationStatus.FAILED
    }
    assert LogEntry.objects.filter(event_type="attestation.verification_failed").count() == 3
    TrustedSigner.objects.update(active=True)
    attestations_reverify(attestations=Attestation.objects.all(), actor=ACTOR)
    assert LogEntry.objects.filter(event_type="attestation.verification_restored").count() == 3


def test_a_statement_edited_in_the_database_fails_reverification(
    full_chain: dict[str, Attestation],
) -> None:
    training = full_chain["training"]
    edited = dict(training.statement, predicate={"buildDefinition": {}, "runDetails": {}})
    Attestation.objects.filter(pk=training.pk).update(statement=edited)

    report = attestations_reverify(
        attestations=Attestation.objects.filter(pk=training.pk), actor=ACTOR
    )

    assert report.failed[0].problem == "the stored statement differs from the signed bytes"


def test_envelope_bytes_edited_in_the_database_fail_reverification(
    full_chain: dict[str, Attestation],
) -> None:
    training = full_chain["training"]
    envelope = json.loads(bytes(training.envelope))
    envelope["signatures"][0]["sig"] = envelope["signatures"][0]["sig"][::-1]
    Attestation.objects.filter(pk=training.pk).update(envelope=json.dumps(envelope).encode())

    report = attestations_reverify(
        attestations=Attestation.objects.filter(pk=training.pk), actor=ACTOR
    )

    assert not report.ok


# --- model.sig uploads --------------------------------------------------------------------


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "model"
    directory.mkdir()
    (directory / "MLmodel").write_text("flavors: {}\n")
    (directory / "model.pkl").write_bytes(b"weights")
    return directory


def test_a_model_sig_from_a_trusted_key_is_accepted(
    pipeline: Any, model_dir: Path, tmp_path: Path
) -> None:
    private_pem, public_key = generate_signing_key()
    trusted_signer_add(
        name="model-signer",
        public_key=public_key,
        predicate_types=[PREDICATE_MODEL_SIGNING],
        actor=ACTOR,
    )
    hashed = model_artifact_record(model_dir=model_dir, name="fraud/3")
    sign_model(model_dir, private_pem, tmp_path / "model.sig")
    raw = (tmp_path / "model.sig").read_bytes()

    intake = attestation_ingest(
        raw=raw, media_type="application/vnd.dev.sigstore.bundle.v0.3+json", actor=ACTOR
    )

    assert intake.created
    assert intake.attestation.format == AttestationFormat.MODEL_SIG
    assert bytes(intake.attestation.envelope) == raw
    assert intake.attestation.subjects.get().artifact == hashed.artifact
    assert attestations_reverify(attestations=[intake.attestation], actor=ACTOR).ok


def test_a_model_sig_from_an_unknown_key_is_refused(model_dir: Path, tmp_path: Path) -> None:
    private_pem, _ = generate_signing_key()
    model_artifact_record(model_dir=model_dir, name="fraud/3")
    sign_model(model_dir, private_pem, tmp_path / "model.sig")

    with pytest.raises(AttestationRefused) as refused:
        attestation_ingest(
            raw=(tmp_path / "model.sig").read_bytes(),
            media_type="application/vnd.dev.sigstore.bundle.v0.3+json",
            actor=ACTOR,
        )
    assert refused.value.code == RejectionCode.UNTRUSTED_SIGNER


def test_a_model_signing_statement_listing_other_files_is_refused(
    pipeline: Any, model_dir: Path
) -> None:
    hashed = model_artifact_record(model_dir=model_dir, name="fraud/3")
    resources = [
        {
            "name": f["path"].replace("model.pkl", "evil.pkl"),
            "digest": f["sha256"],
            "algorithm": "sha256",
        }
        for f in hashed.artifact.manifest.files
    ]
    statement = predicates.statement(
        subjects=[("model", hashed.artifact.digest)],
        predicate_type=PREDICATE_MODEL_SIGNING,
        predicate={"serialization": {"method": "files"}, "resources": resources},
    )

    with pytest.raises(AttestationRefused) as refused:
        ingest(statement, pipeline)
    assert refused.value.code == RejectionCode.SUBJECT_MISMATCH
    assert not Attestation.objects.exists()


def test_only_signers_trusted_with_datasets_introduce_dataset_digests(
    version_node: LineageNode,
) -> None:
    private_pem, public_key = generate_signing_key()
    trusted_signer_add(
        name="trainer-only",
        public_key=public_key,
        predicate_types=[PREDICATE_SLSA_PROVENANCE_V1],
        actor=ACTOR,
    )
    ingest(
        provenance(
            [("fraud/1", MODEL)],
            invocation="run-9",
            dependencies=[dependency(TRAINING_DATA, "d"), dependency(CODE, "x", kind="config")],
        ),
        signer_from_pem(private_pem),
    )

    node = LineageNode.objects.get(kind=NodeKind.DATASET)
    assert node.artifact is None  # named, but not registered: a data steward must attest it
    assert not Artifact.objects.filter(digest=TRAINING_DATA).exists()
    assert not LineageNode.objects.filter(key=f"sha256:{CODE}").exists()  # unknown kind: no node


def test_a_run_keeps_every_builder_that_reported_it(
    pipeline: Any, version_node: LineageNode
) -> None:
    observe("fraud", 1, aliases=[])  # no run id: nothing
    statement = predicates.observation_statement(
        observer="test",
        observed_at=timezone.now(),
        model_digest=MODEL,
        model_version={"name": "fraud", "version": 1, "runId": "run-1", "aliases": []},
        run=None,
        tracking_uri="",
    )
    registry_attestation_issue(statement=statement, actor=ACTOR)
    ingest(provenance([("fraud/1", MODEL)], invocation="run-1", dependencies=[]), pipeline)

    run = LineageNode.objects.get(kind=NodeKind.RUN)
    assert run.attributes["builders"] == ["https://ci.example/train", "mlflow"]
