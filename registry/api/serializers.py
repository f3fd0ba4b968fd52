"""What the registry's API answers with: output serializers, every field named.

(A field called ``source``, ``context`` or ``label`` shadows an attribute of DRF's Field for the
type checker only — the serializer metaclass takes declared fields out of the class — hence the
few ``type: ignore[assignment]``.)

Digests of artifacts read ``sha256:<hex>``, ready to paste into ``/api/v1/artifacts/…`` or a
lineage ``?node=``; an attestation is named by the hex ``envelope_digest`` of its bytes. Links
are absolute URLs.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

from drf_spectacular.utils import extend_schema_field, extend_schema_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.reverse import reverse

from provenance.models import Attestation, AttestationSubject, LineageEdge, LineageNode
from registry.models import AliasHistory, Dataset, ModelAlias, ModelVersion, RegisteredModel, Run
from registry.visible_selectors import subjects_of


class DigestField(serializers.CharField):
    """A sha256 hex column shown as ``sha256:<hex>``."""

    def to_representation(self, value: Any) -> str:
        return f"sha256:{value}"


def link(request: Request | None, route: str, /, **kwargs: Any) -> str:
    """The absolute URL of the named route (relative when there is no request to say where)."""
    return str(reverse(route, kwargs=kwargs, request=request))


class LinkTemplate:
    """A route's absolute URL reversed once per request, then completed for each value of one
    of its arguments: ``reverse()`` for every row of a page cost more than the rest of the row.

    A value made only of ASCII letters and digits (a hex digest, a number) is one ``reverse()``
    leaves as it is, so it is put in the template's place; any other value goes through
    ``reverse()``, which says what it makes of it (quoting, or refusing)."""

    def __init__(self, request: Request | None, route: str, argument: str, **fixed: Any) -> None:
        self._request, self._route, self._argument, self._fixed = request, route, argument, fixed
        url = link(request, route, **fixed, **{argument: SENTINEL})
        self._prefix, _, self._suffix = url.rpartition(SENTINEL)

    def __call__(self, value: str) -> str:
        if value.isascii() and value.isalnum():
            return f"{self._prefix}{value}{self._suffix}"
        return link(self._request, self._route, **self._fixed, **{self._argument: value})


# A value no route argument holds, to cut a reversed URL around.
SENTINEL = "sentinel0sentinel"


def signer_name(attestation: Attestation) -> str:
    """The trusted signer's name, or ``registry`` for what the registry signed itself."""
    signer = attestation.signer
    return signer.name if signer is not None else "registry"


# --- models, versions, aliases ----------------------------------------------------------


@extend_schema_serializer(component_name="AliasPointer")
class AliasPointerOutput(serializers.Serializer[ModelAlias]):
    alias = serializers.CharField()
    version = serializers.IntegerField(source="version.version")


@extend_schema_serializer(component_name="RegisteredModel")
class ModelOutput(serializers.Serializer[RegisteredModel]):
    name = serializers.CharField()
    description = serializers.CharField()
    tags = serializers.DictField(child=serializers.CharField())
    live_versions = serializers.IntegerField(help_text="versions not deleted in MLflow")
    aliases = AliasPointerOutput(many=True)
    mlflow_created_at = serializers.DateTimeField(allow_null=True)
    mlflow_updated_at = serializers.DateTimeField(allow_null=True)
    deleted_at = serializers.DateTimeField(allow_null=True)
    url = serializers.SerializerMethodField()
    versions_url = serializers.SerializerMethodField()

    def get_url(self, model: RegisteredModel) -> str:
        return link(self.context.get("request"), "api-model-detail", name=model.name)

    def get_versions_url(self, model: RegisteredModel) -> str:
        return link(self.context.get("request"), "api-version-list", name=model.name)


@extend_schema_serializer(component_name="ModelVersion")
class VersionOutput(serializers.Serializer[ModelVersion]):
    model = serializers.CharField(source="registered_model.name")
    version = serializers.IntegerField()
    status = serializers.CharField()
    mlflow_status = serializers.CharField()
    hash_status = serializers.CharField()
    digest = DigestField(
        source="model_artifact.digest",
        allow_null=True,
        help_text="the model digest the registry measured (model_signing root digest)",
    )
    aliases = serializers.SerializerMethodField()
    run_id = serializers.CharField(source="mlflow_run_id")
    source = serializers.CharField()  # type: ignore[assignment]
    user_id = serializers.CharField(help_text="who registered it, as MLflow recorded")
    description = serializers.CharField()
    tags = serializers.DictField(child=serializers.CharField())
    mlflow_created_at = serializers.DateTimeField(allow_null=True)
    hashed_at = serializers.DateTimeField(allow_null=True)
    deleted_at = serializers.DateTimeField(allow_null=True)
    url = serializers.SerializerMethodField()
    manifest_url = serializers.SerializerMethodField()
    model_sig_url = serializers.SerializerMethodField()

    def get_aliases(self, version: ModelVersion) -> list[str]:
        return [alias.alias for alias in version.aliases.all()]

    def get_url(self, version: ModelVersion) -> str:
        return link(self.context.get("request"), "api-version-detail", **_version_key(version))

    def get_manifest_url(self, version: ModelVersion) -> str | None:
        if version.model_artifact_id is None:
            return None
        return link(self.context.get("request"), "model-manifest", **_version_key(version))

    def get_model_sig_url(self, version: ModelVersion) -> str | None:
        if not getattr(version, "signed", False):
            return None
        return link(self.context.get("request"), "model-signature", **_version_key(version))


def _version_key(version: ModelVersion) -> dict[str, Any]:
    return {"name": version.registered_model.name, "version": version.version}


@extend_schema_serializer(component_name="RunInput")
class RunInputOutput(serializers.Serializer[Any]):
    dataset_id = serializers.IntegerField(source="dataset.pk")
    name = serializers.CharField(source="dataset.name")
    digest = serializers.CharField(source="dataset.digest", help_text="MLflow's digest")
    sha256 = DigestField(source="dataset.artifact.digest", allow_null=True)
    context = serializers.CharField(help_text="e.g. training, evaluation")  # type: ignore[assignment]


@extend_schema_serializer(component_name="ModelVersionDetail")
class VersionDetailOutput(VersionOutput):
    hash_error = serializers.CharField()
    run = serializers.SerializerMethodField()
    datasets = serializers.SerializerMethodField()
    reverify_url = serializers.SerializerMethodField()

    def get_run(self, version: ModelVersion) -> str | None:
        if version.run is None:
            return None
        return link(self.context.get("request"), "api-run-detail", run_id=version.run.run_id)

    @extend_schema_field(RunInputOutput(many=True))
    def get_datasets(self, version: ModelVersion) -> list[dict[str, Any]]:
        inputs = version.run.inputs.all() if version.run is not None else []
        return list(RunInputOutput(inputs, many=True).data)

    def get_reverify_url(self, version: ModelVersion) -> str:
        return link(self.context.get("request"), "api-version-reverify", **_version_key(version))


@extend_schema_serializer(component_name="ModelAlias")
class AliasOutput(serializers.Serializer[Any]):
    alias = serializers.CharField()
    version = serializers.IntegerField(source="version.version")
    digest = DigestField(source="version.model_artifact.digest", allow_null=True)
    updated_at = serializers.DateTimeField()


@extend_schema_serializer(component_name="AliasHistoryEntry")
class AliasHistoryOutput(serializers.Serializer[AliasHistory]):
    alias = serializers.CharField()
    from_version = serializers.IntegerField(source="from_version.version", allow_null=True)
    to_version = serializers.IntegerField(
        source="to_version.version", allow_null=True, help_text="null: the alias was removed"
    )
    changed_at = serializers.DateTimeField()
    changed_by = serializers.CharField(help_text="empty when MLflow did not say")
    source = serializers.CharField()  # type: ignore[assignment]


# --- runs and datasets ------------------------------------------------------------------


@extend_schema_serializer(component_name="VersionPointer")
class VersionPointerOutput(serializers.Serializer[ModelVersion]):
    model = serializers.CharField(source="registered_model.name")
    version = serializers.IntegerField()


@extend_schema_serializer(component_name="Run")
class RunOutput(serializers.Serializer[Run]):
    run_id = serializers.CharField()
    experiment_id = serializers.CharField()
    run_name = serializers.CharField()
    user = serializers.CharField()
    status = serializers.CharField()
    lifecycle_stage = serializers.CharField()
    start_time = serializers.DateTimeField(allow_null=True)
    end_time = serializers.DateTimeField(allow_null=True)
    params = serializers.DictField(child=serializers.CharField())
    metrics = serializers.DictField(child=serializers.FloatField())
    tags = serializers.DictField(child=serializers.CharField())
    model_versions = VersionPointerOutput(many=True, help_text="those one may see")
    datasets = RunInputOutput(many=True, source="inputs")
    url = serializers.SerializerMethodField()

    def get_url(self, run: Run) -> str:
        return link(self.context.get("request"), "api-run-detail", run_id=run.run_id)


@extend_schema_serializer(component_name="Dataset")
class DatasetOutput(serializers.Serializer[Dataset]):
    id = serializers.IntegerField()
    name = serializers.CharField()
    digest = serializers.CharField(help_text="MLflow's digest (short, unkeyed)")
    sha256 = DigestField(
        source="artifact.digest",
        allow_null=True,
        help_text="the identity a verified attestation gave it; null until one does",
    )
    source_type = serializers.CharField()
    source = serializers.CharField()  # type: ignore[assignment]
    schema = serializers.JSONField(allow_null=True)
    profile = serializers.JSONField(allow_null=True)
    url = serializers.SerializerMethodField()

    def get_url(self, dataset: Dataset) -> str:
        return link(self.context.get("request"), "api-dataset-detail", dataset_id=dataset.pk)


@extend_schema_serializer(component_name="DatasetUse")
class DatasetUseOutput(serializers.Serializer[Any]):
    run_id = serializers.CharField(source="run.run_id")
    context = serializers.CharField()  # type: ignore[assignment]


@extend_schema_serializer(component_name="DatasetDetail")
class DatasetDetailOutput(DatasetOutput):
    used_by = DatasetUseOutput(many=True, source="run_inputs.all", help_text="visible runs")


# --- attestations and artifacts ---------------------------------------------------------


@extend_schema_serializer(component_name="AttestationRef")
class AttestationRefOutput(serializers.Serializer[Attestation]):
    envelope_digest = serializers.CharField()
    predicate_type = serializers.CharField()
    signer = serializers.SerializerMethodField()
    verification_status = serializers.CharField()
    url = serializers.SerializerMethodField()

    def get_signer(self, attestation: Attestation) -> str:
        return signer_name(attestation)

    def get_url(self, attestation: Attestation) -> str:
        return link(
            self.context.get("request"),
            "api-attestation-detail",
            envelope_digest=attestation.envelope_digest,
        )


@extend_schema_serializer(component_name="AttestationSubject")
class SubjectOutput(serializers.Serializer[Any]):
    name = serializers.CharField()
    digest = DigestField(source="artifact.digest")
    kind = serializers.CharField(source="artifact.kind")


class _AttestationSubjects(serializers.ListSerializer):  # type: ignore[type-arg]
    """An attestation's subjects, as ``subjects_of`` gives them: the rows read with the page."""

    def get_attribute(self, instance: Attestation) -> list[AttestationSubject]:
        return subjects_of(instance)


@extend_schema_serializer(component_name="Attestation")
class AttestationOutput(AttestationRefOutput):
    """Declared field by field as usual (the schema, and the detail's fields, come from the
    declarations); an attestation of a list is written by hand, to the same keys, order and
    values, which a test holds to DRF's own writing of the declared fields. DRF's generic
    writing took 0.4 ms an attestation, most of a page of fifty."""

    format = serializers.CharField()
    signing_key_id = serializers.CharField(
        source="signing_key.key_id", allow_null=True, help_text="set when the registry signed it"
    )
    received_at = serializers.DateTimeField()
    verified_at = serializers.DateTimeField(allow_null=True)
    subjects = _AttestationSubjects(child=SubjectOutput())

    def to_representation(self, instance: Attestation) -> dict[str, Any]:
        if type(self) is not AttestationOutput:  # a subclass declares more: DRF writes it
            return dict(super().to_representation(instance))
        time = self._time
        key = instance.signing_key
        return {
            "envelope_digest": str(instance.envelope_digest),
            "predicate_type": str(instance.predicate_type),
            "signer": signer_name(instance),
            "verification_status": str(instance.verification_status),
            "url": self._url(instance.envelope_digest),
            "format": str(instance.format),
            "signing_key_id": str(key.key_id) if key is not None else None,
            "received_at": time.to_representation(instance.received_at),
            "verified_at": (
                time.to_representation(instance.verified_at) if instance.verified_at else None
            ),
            "subjects": [
                {
                    "name": str(subject.name),
                    "digest": f"sha256:{subject.artifact.digest}",
                    "kind": str(subject.artifact.kind),
                }
                for subject in subjects_of(instance)
            ],
        }

    @cached_property
    def _url(self) -> LinkTemplate:
        return LinkTemplate(
            self.context.get("request"), "api-attestation-detail", "envelope_digest"
        )

    @cached_property
    def _time(self) -> serializers.DateTimeField:
        return serializers.DateTimeField()


@extend_schema_serializer(component_name="LineageEdgeOfAttestation")
class ProvenEdgeOutput(serializers.Serializer[LineageEdge]):
    upstream = serializers.SerializerMethodField(help_text="the node's ref")
    downstream = serializers.SerializerMethodField(help_text="the node's ref")
    relation = serializers.CharField()
    created_at = serializers.DateTimeField()
    ended_at = serializers.DateTimeField(allow_null=True)

    def get_upstream(self, edge: LineageEdge) -> str:
        return self._ref(edge.upstream_id) or str(edge.upstream)

    def get_downstream(self, edge: LineageEdge) -> str:
        return self._ref(edge.downstream_id) or str(edge.downstream)

    def _ref(self, node_id: int) -> str | None:
        # A graph's edges join its nodes, already loaded: name them without a query each.
        nodes: dict[int, LineageNode] = self.context.get("nodes", {})
        node = nodes.get(node_id)
        return str(node) if node is not None else None


@extend_schema_serializer(component_name="AttestationDetail")
class AttestationDetailOutput(AttestationOutput):
    statement = serializers.JSONField(help_text="the in-toto statement, as signed")
    verification_problem = serializers.CharField()
    envelope_url = serializers.SerializerMethodField()
    lineage_edges = serializers.SerializerMethodField()

    def get_envelope_url(self, attestation: Attestation) -> str:
        return link(
            self.context.get("request"),
            "api-attestation-envelope",
            envelope_digest=attestation.envelope_digest,
        )

    @extend_schema_field(ProvenEdgeOutput(many=True))
    def get_lineage_edges(self, attestation: Attestation) -> list[dict[str, Any]]:
        edges = self.context.get("edges", [])
        return list(ProvenEdgeOutput(edges, many=True).data)


@extend_schema_serializer(component_name="ManifestSummary")
class ManifestSummaryOutput(serializers.Serializer[Any]):
    files = serializers.IntegerField(help_text="number of files")
    total_size = serializers.IntegerField(help_text="bytes")
    computed_at = serializers.DateTimeField()


@extend_schema_serializer(component_name="Artifact")
class ArtifactOutput(serializers.Serializer[Any]):
    digest = DigestField(source="artifact.digest")
    kind = serializers.CharField(source="artifact.kind")
    name = serializers.CharField(source="artifact.name")
    size = serializers.IntegerField(source="artifact.size", help_text="bytes; 0 when unknown")
    created_at = serializers.DateTimeField(source="artifact.created_at")
    manifest = serializers.SerializerMethodField()
    model_versions = VersionPointerOutput(many=True, source="versions")
    datasets = DatasetOutput(many=True)
    attestations = AttestationRefOutput(many=True)

    @extend_schema_field(ManifestSummaryOutput(allow_null=True))
    def get_manifest(self, detail: Any) -> dict[str, Any] | None:
        manifest = getattr(detail.artifact, "manifest", None)
        if manifest is None:
            return None
        files = list(manifest.files)
        summary = {
            "files": len(files),
            "total_size": sum(int(f.get("size", 0)) for f in files),
            "computed_at": manifest.computed_at,
        }
        return dict(ManifestSummaryOutput(summary).data)


# --- lineage ----------------------------------------------------------------------------


def node_digest(node: LineageNode) -> str | None:
    if node.artifact is not None:
        return f"sha256:{node.artifact.digest}"
    return node.key if node.key.startswith("sha256:") else None


@extend_schema_serializer(component_name="LineageNode")
class NodeOutput(serializers.Serializer[LineageNode]):
    ref = serializers.CharField(source="__str__", help_text="`<kind>:<key>`, usable as ?node=")
    kind = serializers.CharField()
    key = serializers.CharField()
    label = serializers.CharField()  # type: ignore[assignment]
    digest = serializers.SerializerMethodField()
    depth = serializers.SerializerMethodField(help_text="edges away from the start")

    def get_digest(self, node: LineageNode) -> str | None:
        return node_digest(node)

    def get_depth(self, node: LineageNode) -> int:
        depth_of: dict[int, int] = self.context.get("depth_of", {})
        return depth_of.get(node.pk, 0)


@extend_schema_serializer(component_name="LineageEdge")
class EdgeOutput(ProvenEdgeOutput):
    attestation = AttestationRefOutput(help_text="what proves the edge")


@extend_schema_serializer(component_name="LineageGraph")
class GraphOutput(serializers.Serializer[Any]):
    start = NodeOutput(many=True)
    nodes = NodeOutput(many=True)
    edges = EdgeOutput(many=True)
