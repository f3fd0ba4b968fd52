"""docs/predicates.md and docs/pipelines.md tell the truth about the code.

predicates.md marks its blocks with an HTML comment on the line before: ``<!-- schema: NAME -->``
(a JSON Schema, draft 2020-12, of a predicate), ``<!-- example: NAME/EXAMPLE -->`` (a complete
Statement whose predicate follows schema NAME) and ``<!-- edges: NAME/EXAMPLE -->`` (the lineage
edges that example yields, one ``<upstream> -<relation>-> <downstream>`` per line).
pipelines.md marks the code it asks people to run with ``<!-- pipeline: NAME -->``; it is run
here, against a real MLflow store and the registry's API.
"""

from __future__ import annotations

import json
import re
import shlex
import sys
import types
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from io import StringIO
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema  # type: ignore[import-untyped]  # no stubs installed
import pytest
import requests
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from django.core.management import call_command
from django.test import Client
from django.utils import timezone
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict
from securesystemslib.signer import SSlibKey  # type: ignore[attr-defined]

from provenance import predicates
from provenance.attestation_verify import (
    PREDICATE_CYCLONEDX,
    PREDICATE_MODEL_SIGNING,
    PREDICATE_SLSA_PROVENANCE_V1,
    PREDICATE_SPDX,
    PREDICATE_TEST_RESULT,
    AttestationRejected,
    RejectionCode,
    check_predicate_type,
    generate_signing_key,
    key_id,
    parse_envelope,
    sign_statement,
    signer_from_pem,
    verify_envelope,
)
from provenance.log_format import Actor
from provenance.model_manifest import FileDigest, ModelManifest
from provenance.models import Artifact, ArtifactKind, Attestation, LineageEdge
from provenance.models import ModelManifest as StoredManifest
from provenance.services import (
    AttestationRefused,
    attestation_ingest,
    registry_attestation_issue,
    trusted_signer_add,
    version_node_ensure,
)
from registry import services
from registry.choices import SyncTrigger
from registry.models import Dataset, ModelVersion
from tests.conftest import MlflowStore, make_user

DOCS = Path(__file__).resolve().parents[2] / "docs"
ACTOR = Actor.system("test")
MARKED = re.compile(
    r"<!-- (?P<kind>schema|example|edges|pipeline): (?P<name>\S+) -->\n"
    r"```(?P<lang>[a-z]*)\n(?P<text>.*?)\n```\n",
    re.DOTALL,
)
EVALUATION_PLACEHOLDER = "<envelope digest>"
TYPES_THE_REGISTRY_ACCEPTS = (
    PREDICATE_SLSA_PROVENANCE_V1,
    PREDICATE_TEST_RESULT,
    PREDICATE_MODEL_SIGNING,
    PREDICATE_CYCLONEDX,
    PREDICATE_SPDX,
    *predicates.REGISTRY_PREDICATE_TYPES,
)


# --------------------------------------------------------------------------
# Reading the documents
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Block:
    kind: str
    name: str
    lang: str
    text: str

    def parsed(self) -> Any:
        return json.loads(self.text)


@cache
def marked_blocks(document: str) -> tuple[Block, ...]:
    text = (DOCS / document).read_text(encoding="utf-8")
    return tuple(
        Block(kind=m["kind"], name=m["name"], lang=m["lang"], text=m["text"])
        for m in MARKED.finditer(text)
    )


def named(document: str, kind: str) -> dict[str, Block]:
    found: dict[str, Block] = {}
    for block in marked_blocks(document):
        if block.kind == kind:
            assert block.name not in found, f"{document}: two blocks marked {kind}: {block.name}"
            found[block.name] = block
    return found


def schemas() -> dict[str, dict[str, Any]]:
    return {name: block.parsed() for name, block in named("predicates.md", "schema").items()}


def examples() -> dict[str, dict[str, Any]]:
    return {name: block.parsed() for name, block in named("predicates.md", "example").items()}


def documented_edges() -> dict[str, set[str]]:
    return {
        name: {line.strip() for line in block.text.splitlines() if line.strip()}
        for name, block in named("predicates.md", "edges").items()
    }


def validator(schema_name: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(
        schemas()[schema_name], format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )


def problems(schema_name: str, instance: Any) -> list[str]:
    return [
        f"{'/'.join(str(p) for p in error.absolute_path) or '(root)'}: {error.message}"
        for error in validator(schema_name).iter_errors(instance)
    ]


def schema_of(example_name: str) -> str:
    return example_name.split("/", 1)[0]


EXAMPLE_NAMES = sorted(named("predicates.md", "example"))
SCHEMA_NAMES = sorted(named("predicates.md", "schema"))


# --------------------------------------------------------------------------
# predicates.md: schemas and examples
# --------------------------------------------------------------------------


def test_every_json_block_of_predicates_md_is_a_marked_schema_or_example() -> None:
    text = (DOCS / "predicates.md").read_text(encoding="utf-8")
    json_blocks = text.count("```json\n")
    marked = [b for b in marked_blocks("predicates.md") if b.kind in {"schema", "example"}]
    assert all(b.lang == "json" for b in marked)
    assert len(marked) == json_blocks
    assert {schema_of(name) for name in EXAMPLE_NAMES} <= set(SCHEMA_NAMES)
    assert set(documented_edges()) <= set(EXAMPLE_NAMES)


@pytest.mark.parametrize("name", SCHEMA_NAMES)
def test_each_schema_is_a_draft_2020_12_schema(name: str) -> None:
    schema = schemas()[name]
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)


@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_each_example_follows_its_schema_and_the_statement_schema(name: str) -> None:
    example = examples()[name]
    assert problems("statement", example) == []
    assert problems(schema_of(name), example["predicate"]) == []
    title = schemas()[schema_of(name)]["title"]
    assert example["predicateType"] == title or example["predicateType"].startswith(f"{title}/")


@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_each_example_passes_the_registrys_own_parser(name: str) -> None:
    example = examples()[name]
    check_predicate_type(example["predicateType"])
    private_pem, public_key = generate_signing_key()

    parsed = parse_envelope(sign_statement(example, signer_from_pem(private_pem)))

    assert parsed.statement == example
    assert verify_envelope(parsed, {key_id(public_key): public_key}) == [key_id(public_key)]


def test_every_predicate_type_the_registry_accepts_has_a_schema() -> None:
    titles = {schema["title"] for schema in schemas().values()}
    assert set(TYPES_THE_REGISTRY_ACCEPTS) <= titles


@pytest.mark.parametrize(
    "predicate_type",
    [
        *TYPES_THE_REGISTRY_ACCEPTS,
        "https://cyclonedx.org/bom/v1.6",
        "https://spdx.dev/Document/v2.3",
        "https://spdx.dev/Document/v3",
        "https://secmlops.dev/attestation/other/v2",
        "https://slsa.dev/provenance/v0.2",
        "https://in-toto.io/attestation/test-result/v0.2",
        "https://cyclonedx.org/bom/1.6",
        "https://cyclonedx.org/bom/v1",
        "https://spdx.dev/Document/2.3",
        "https://secmlops.dev/attestation/",
        "https://secmlops.dev/attestation/Observation/v1",
        "https://example.org/predicate/v1",
        "",
    ],
)
def test_the_statement_schema_accepts_exactly_the_types_the_registry_accepts(
    predicate_type: str,
) -> None:
    try:
        check_predicate_type(predicate_type)
    except AttestationRejected:
        accepted = False
    else:
        accepted = True
    statement = predicates.statement(
        subjects=[("x", "ab" * 32)], predicate_type=predicate_type, predicate={}
    )
    assert (problems("statement", statement) == []) == accepted


def test_the_model_signing_example_subject_is_the_root_digest_of_its_files() -> None:
    example = examples()["model-signing/model-sig"]
    files = [
        FileDigest(path=r["name"], size=0, sha256=r["digest"])
        for r in example["predicate"]["resources"]
    ]
    root = ModelManifest.from_files(files).root_digest
    assert example["subject"][0]["digest"]["sha256"] == root


# --------------------------------------------------------------------------
# The registry's own statements follow their documented schemas
# --------------------------------------------------------------------------


def when(text: str) -> datetime:
    return datetime.fromisoformat(text)


def test_the_observation_example_is_what_the_registry_builds() -> None:
    example = examples()["observation/after-hashing"]
    predicate = example["predicate"]

    built = predicates.observation_statement(
        observer=predicate["observer"]["id"],
        observed_at=when(predicate["observedAt"]),
        model_digest=example["subject"][0]["digest"]["sha256"],
        model_version=predicate["modelVersion"],
        run=predicate["run"],
        tracking_uri=predicate["source"]["trackingUri"],
    )

    assert built == example


def test_the_verification_example_is_what_the_registry_builds() -> None:
    example = examples()["verification/passed"]
    predicate = example["predicate"]

    built = predicates.verification_statement(
        verifier=predicate["verifier"]["id"],
        verified_at=when(predicate["verifiedAt"]),
        model_version=predicate["modelVersion"],
        expected_digest=predicate["rehash"]["expected"]["sha256"],
        measured_digest=predicate["rehash"]["measured"]["sha256"],
        attestations=predicate["attestations"],
    )

    assert built == example


def test_built_statements_follow_the_documented_schemas() -> None:
    example = examples()["observation/after-hashing"]["predicate"]
    without_run = predicates.observation_statement(
        observer="registry.example.org/governance-log",
        observed_at=timezone.now(),
        model_digest="ab" * 32,
        model_version={**example["modelVersion"], "runId": "", "createdAt": None},
        run=None,
        tracking_uri="sqlite:///var/mlflow.db",
    )
    failed = predicates.verification_statement(
        verifier="registry.example.org/governance-log",
        verified_at=timezone.now(),
        model_version={"name": "fraud", "version": 1},
        expected_digest="ab" * 32,
        measured_digest="cd" * 32,
        attestations=[
            {
                "digest": {"sha256": "ef" * 32},
                "predicateType": PREDICATE_SLSA_PROVENANCE_V1,
                "status": "failed",
                "problem": "signer 'ci' is no longer trusted",
            }
        ],
    )
    assert failed["predicate"]["result"] == "FAILED"
    for name, statement in (("observation", without_run), ("verification", failed)):
        assert problems("statement", statement) == []
        assert problems(name, statement["predicate"]) == []


# --------------------------------------------------------------------------
# Posting each example yields the documented edges
# --------------------------------------------------------------------------


@pytest.fixture
def registry_keys_in_tmp(settings: Any, tmp_path: Path) -> None:
    settings.VAR_DIR = tmp_path / "var"
    settings.ATTESTATION_SIGNING_KEY_FILE = ""


def edges_of(attestation: Attestation) -> set[str]:
    return {
        str(edge)
        for edge in LineageEdge.objects.filter(attestation=attestation).select_related(
            "upstream", "downstream"
        )
    }


@pytest.mark.django_db
@pytest.mark.usefixtures("registry_keys_in_tmp")
def test_posting_each_example_yields_the_documented_edges() -> None:
    model_signing = examples()["model-signing/model-sig"]
    model_digest = model_signing["subject"][0]["digest"]["sha256"]
    artifact = Artifact.objects.create(
        digest=model_digest,
        kind=ArtifactKind.MODEL,
        name="fraud-detector/3",
        size=5,
        created_at=timezone.now(),
    )
    StoredManifest.objects.create(
        artifact=artifact,
        files=[
            {"path": r["name"], "size": 1, "sha256": r["digest"]}
            for r in model_signing["predicate"]["resources"]
        ],
        ignore_paths=model_signing["predicate"]["serialization"]["ignore_paths"],
        computed_at=timezone.now(),
    )
    version_node_ensure(name="fraud-detector", version=3, artifact=artifact)
    uploaded = {
        name: example
        for name, example in examples().items()
        if example["predicateType"] not in predicates.REGISTRY_PREDICATE_TYPES
    }
    private_pem, public_key = generate_signing_key()
    trusted_signer_add(
        name="docs-pipeline",
        public_key=public_key,
        predicate_types=sorted({e["predicateType"] for e in uploaded.values()}),
        may_register_datasets=True,
        actor=ACTOR,
    )
    signer = signer_from_pem(private_pem)
    expected = documented_edges()

    wrong = {}
    for name, example in examples().items():  # in the order of the page
        if name in uploaded:
            raw = sign_statement(example, signer)
            attestation = attestation_ingest(
                raw=raw, media_type="application/json", actor=ACTOR
            ).attestation
        else:
            attestation = registry_attestation_issue(statement=example, actor=ACTOR)
        documented = {
            edge.replace(EVALUATION_PLACEHOLDER, attestation.envelope_digest)
            for edge in expected.get(name, set())
        }
        if edges_of(attestation) != documented:
            wrong[name] = sorted(edges_of(attestation))

    assert wrong == {}


@pytest.mark.django_db
@pytest.mark.parametrize(
    "name",
    [
        n
        for n in EXAMPLE_NAMES
        if examples()[n]["predicateType"] in predicates.REGISTRY_PREDICATE_TYPES
    ],
)
def test_the_registrys_own_types_are_never_accepted_from_an_upload(name: str) -> None:
    example = examples()[name]
    private_pem, public_key = generate_signing_key()
    trusted_signer_add(
        name="forger",
        public_key=public_key,
        predicate_types=list(predicates.REGISTRY_PREDICATE_TYPES),
        actor=ACTOR,
    )
    raw = sign_statement(example, signer_from_pem(private_pem))

    with pytest.raises(AttestationRefused) as refused:
        attestation_ingest(raw=raw, media_type="application/json", actor=ACTOR)

    assert refused.value.code == RejectionCode.PREDICATE_NOT_ALLOWED
    assert refused.value.status == 403


# --------------------------------------------------------------------------
# pipelines.md
# --------------------------------------------------------------------------


PIPELINE_BLOCKS = {
    "keys",
    "setup",
    "attest.py",
    "etl.py",
    "train.py",
    "evaluate.py",
    "sign_model.py",
}


def test_every_pipeline_block_is_one_the_tests_run() -> None:
    assert set(named("pipelines.md", "pipeline")) == PIPELINE_BLOCKS


def pipeline_code(name: str) -> str:
    return named("pipelines.md", "pipeline")[name].text


def run_block(name: str, namespace: dict[str, Any] | None = None) -> dict[str, Any]:
    """Execute a block of pipelines.md as a module called ``name`` (never ``__main__``)."""
    scope: dict[str, Any] = namespace if namespace is not None else {}
    scope.setdefault("__name__", name.removesuffix(".py"))
    exec(compile(pipeline_code(name), f"docs/pipelines.md:{name}", "exec"), scope)  # noqa: S102
    return scope


@pytest.fixture
def attest(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> types.ModuleType:
    """attest.py from the guide, importable as ``attest``; the keys block run in ``tmp_path``."""
    monkeypatch.chdir(tmp_path)
    run_block("keys")
    module = types.ModuleType("attest")
    run_block("attest.py", module.__dict__)
    monkeypatch.setitem(sys.modules, "attest", module)
    return module


def trusted_public_key(path: Path) -> dict[str, Any]:
    """The key dict ``trust_signer --public-key`` stores for a PEM file."""
    key: dict[str, Any] = SSlibKey.from_crypto(load_pem_public_key(path.read_bytes())).to_dict()
    return key


def test_the_guides_signing_code_makes_envelopes_the_registry_verifies(
    attest: types.ModuleType, tmp_path: Path
) -> None:
    example = examples()["slsa-provenance/training"]
    signer = attest.load_signer("training.key")
    statement = attest.statement(
        [(s["name"], s["digest"]["sha256"]) for s in example["subject"]],
        attest.SLSA_PROVENANCE,
        example["predicate"],
    )
    assert statement == example
    public_key = trusted_public_key(tmp_path / "training.pub")

    parsed = parse_envelope(attest.sign(statement, signer))

    assert parsed.statement == example
    assert verify_envelope(parsed, {key_id(public_key): public_key}) == [key_id(public_key)]
    assert (tmp_path / "training.key").stat().st_mode & 0o077 == 0


class DjangoTransport(BaseAdapter):
    """Hands the guide's HTTP requests to Django's test client instead of the network."""

    def __init__(self, client: Client) -> None:
        super().__init__()
        self.client = client

    def send(  # noqa: PLR0917  (BaseAdapter.send's signature)
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: float | tuple[float, float] | tuple[float, None] | None = None,
        verify: bool | str = True,
        cert: bytes | str | tuple[bytes | str, bytes | str] | None = None,
        proxies: Mapping[str, str] | None = None,
    ) -> requests.Response:
        url = urlsplit(request.url or "")
        path = f"{url.path}?{url.query}" if url.query else url.path
        body = request.body or b""
        headers = {
            k: v
            for k, v in request.headers.items()
            if k.lower() not in {"content-type", "content-length"}
        }
        answer = self.client.generic(
            request.method or "GET",
            path,
            data=body.encode() if isinstance(body, str) else body,
            content_type=request.headers.get("Content-Type", ""),
            headers=headers,
        )
        response = requests.Response()
        response.status_code = answer.status_code
        response._content = answer.content
        response.headers = CaseInsensitiveDict(dict(answer.items()))
        response.url = request.url or ""
        response.request = request
        response.encoding = "utf-8"
        return response

    def close(self) -> None:
        pass


class RegistryWorker:
    """Stands in for ``time`` in attest.py: while the guide's job waits for the manifest, the
    registry's worker mirrors MLflow and hashes the new versions, as Celery would."""

    def __init__(self) -> None:
        self.waits = 0

    def monotonic(self) -> float:
        return 0.0

    def sleep(self, seconds: float) -> None:
        self.waits += 1
        assert self.waits < 10, "the registry never served the manifest"
        services.mlflow_sync(trigger=SyncTrigger.MANUAL)
        for version in ModelVersion.objects.filter(model_artifact__isnull=True):
            services.model_version_hash(version_pk=version.pk)


def run_setup_commands() -> dict[str, str]:
    """The operator's commands of the guide, through call_command; ``VAR=$(…)`` captured."""
    captured: dict[str, str] = {}
    script = pipeline_code("setup").replace("\\\n", " ")
    for line in filter(None, (line.strip() for line in script.splitlines())):
        match = re.fullmatch(r"(?:(?P<var>\w+)=\$\()?python manage\.py (?P<args>.+?)\)?", line)
        assert match, f"not a manage.py command: {line}"
        out = StringIO()
        call_command(*shlex.split(match["args"]), stdout=out, stderr=StringIO())
        if match["var"]:
            captured[match["var"]] = out.getvalue().strip()
    return captured


def write_raw_extracts(raw: Path) -> None:
    """Twenty transactions; the five largest were charged back."""
    raw.mkdir()
    rows = "\n".join(f"{i},{i * 10.0}" for i in range(1, 21))
    (raw / "transactions.csv").write_text(f"id,amount\n{rows}\n")
    (raw / "chargebacks.csv").write_text("id\n16\n17\n18\n19\n20\n")


@pytest.mark.django_db
@pytest.mark.usefixtures("registry_keys_in_tmp")
def test_the_pipeline_guide_runs_end_to_end(
    attest: types.ModuleType,
    mlflow_store: MlflowStore,
    client: Client,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    make_user("ci-bot")
    token = run_setup_commands()["REGISTRY_TOKEN"]
    registry = attest.Registry("http://registry.test", token)
    registry.http.mount("http://registry.test/", DjangoTransport(client))
    worker = RegistryWorker()
    monkeypatch.setattr(attest, "time", worker)
    raw, data = tmp_path / "raw", tmp_path / "data" / "transactions-2026-06.parquet"
    write_raw_extracts(raw)
    data.parent.mkdir()
    etl, train = run_block("etl.py"), run_block("train.py")
    evaluate, sign_model = run_block("evaluate.py"), run_block("sign_model.py")

    built = etl["main"](
        registry, attest.load_signer("etl.key"), raw=raw, out=data, job_id="etl-2026-06-30"
    )
    trained = train["main"](
        registry,
        attest.load_signer("training.key"),
        data=data,
        source="s3://data/transactions-2026-06.parquet",
        git_commit="3f9b2c4d5e6f708192a3b4c5d6e7f8091a2b3c4d",
    )
    evaluated = evaluate["main"](
        registry,
        attest.load_signer("evaluation.key"),
        version=1,
        holdout=data,
        holdout_uri="s3://data/transactions-2026-06.parquet",
        url="https://ci.example.org/jobs/1",
    )
    signed = sign_model["main"](
        registry, model="fraud-detector", version=1, key_file="training.key"
    )

    assert worker.waits >= 1  # the training job did wait for the registry to hash the version
    assert (built["signer"], built["subjects"][0]["kind"]) == ("etl-pipeline", "dataset")
    assert trained["signer"] == "training-pipeline"
    assert trained["subjects"][0]["name"] == "fraud-detector/1"
    assert evaluated["signer"] == "evaluation-pipeline"
    assert (signed["format"], signed["signer"]) == ("model_sig", "training-pipeline")
    dataset = attest.file_sha256(data)
    transactions, chargebacks = (
        attest.file_sha256(raw / f"{name}.csv") for name in ("transactions", "chargebacks")
    )
    version = ModelVersion.objects.select_related("run").get()
    assert version.run is not None
    run = version.run.run_id
    evaluation = Attestation.objects.get(predicate_type=PREDICATE_TEST_RESULT)
    assert evaluation.statement["predicate"]["result"] == "PASSED"
    assert {str(e) for e in LineageEdge.objects.select_related("upstream", "downstream")} == {
        f"dataset:sha256:{transactions} -derived-from-> run:etl-2026-06-30",
        f"dataset:sha256:{chargebacks} -derived-from-> run:etl-2026-06-30",
        f"run:etl-2026-06-30 -produced-> dataset:sha256:{dataset}",
        f"dataset:sha256:{dataset} -trained-on-> run:{run}",
        f"run:{run} -produced-> model_version:fraud-detector/1",
        f"model_version:fraud-detector/1 -evaluated-by-> evaluation:{evaluation.envelope_digest}",
    }
    mlflow_dataset = Dataset.objects.select_related("artifact").get(name="transactions")
    assert mlflow_dataset.artifact is not None
    assert mlflow_dataset.artifact.digest == dataset

    # What the registry signed along the way follows predicates.md.
    mlflow_store.client.set_registered_model_alias("fraud-detector", "staging", "1")
    services.mlflow_sync(trigger=SyncTrigger.MANUAL)
    verification = services.model_version_reverify(version_pk=version.pk, actor=ACTOR)
    assert verification is not None
    assert verification.statement["predicate"]["result"] == "PASSED"
    assert problems("verification", verification.statement["predicate"]) == []
    observations = Attestation.objects.filter(
        predicate_type=predicates.PREDICATE_OBSERVATION
    ).order_by("received_at", "pk")
    aliases = [o.statement["predicate"]["modelVersion"]["aliases"] for o in observations]
    assert aliases == [[], ["staging"]]
    for observation in observations:
        assert problems("statement", observation.statement) == []
        assert problems("observation", observation.statement["predicate"]) == []
        assert observation.statement["predicate"]["run"]["inputs"][0]["name"] == "transactions"
