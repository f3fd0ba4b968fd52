"""Reads for the REST API and the pages, each narrowed to what the caller may see.

Every function takes the caller's :class:`~provenance.visibility.Visibility` (the views get it
from ``config.access``) and narrows its queryset, in lists and details alike: what the caller
may not see is "not found", never "forbidden", so no model's existence leaks. A caller who
sees everything pays nothing for the narrowing; someone with per-model roles sees their models'
versions, the runs that produced them, the datasets those runs used, their aliases and alias
history, the artifacts of all these and of the lineage upstream of their versions, and the
attestations about those artifacts.

They live beside ``registry/selectors.py`` (the unscoped reads of tasks and services, and of
the pages once the version is known to be visible) rather than in it, to keep each module small.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import connection, models
from django.db.models import Count, Exists, OuterRef, Prefetch, Q, QuerySet, Subquery

from config.errors import NotFound
from provenance import selectors as provenance_selectors
from provenance.models import (
    Artifact,
    Attestation,
    AttestationSubject,
    LineageEdge,
    ModelScan,
    ModelSignature,
    NodeKind,
)
from provenance.predicates import PREDICATE_VERIFICATION
from provenance.selectors.lineage import GraphRows
from provenance.selectors.lineage_visible import scoped_node_ids
from provenance.visibility import Visibility
from registry.choices import VersionStatus
from registry.models import (
    AliasHistory,
    Dataset,
    ModelAlias,
    ModelVersion,
    RegisteredModel,
    Run,
    RunInput,
)
from registry.selectors import VersionProvenance, version_get, version_lineage


def _fits(model: type[models.Model], field_name: str, value: int) -> bool:
    """Whether ``value`` fits the integer column: a number beyond it cannot name anything, and
    must not reach the database driver, which would fail loudly on the overflow."""
    field = model._meta.get_field(field_name)
    assert isinstance(field, models.Field)  # noqa: S101  (a column, named by the caller)
    low, high = connection.ops.integer_field_range(field.get_internal_type())
    return (low is None or value >= low) and (high is None or value <= high)


def _models_seen(visibility: Visibility) -> QuerySet[RegisteredModel]:
    models = RegisteredModel.objects.all()
    if visibility.everything:
        return models
    return models.filter(name__in=sorted(visibility.model_names))


# --- models, versions, aliases ----------------------------------------------------------


def models_visible(*, visibility: Visibility) -> QuerySet[RegisteredModel]:
    """The inventory: models with their live version count and current aliases."""
    return (
        _models_seen(visibility)
        .annotate(
            live_versions=Count("versions", filter=~Q(versions__status=VersionStatus.DELETED))
        )
        .prefetch_related(
            Prefetch(
                "aliases",
                queryset=ModelAlias.objects.select_related("version").order_by("alias"),
            )
        )
    )


def model_visible_get(*, visibility: Visibility, name: str) -> RegisteredModel:
    model = models_visible(visibility=visibility).filter(name=name).first()
    if model is None:
        raise NotFound(f"no registered model {name!r}", code="model_not_found")
    return model


def _model_of(visibility: Visibility, name: str) -> RegisteredModel:
    """A parent model, fetched bare (no annotations) for a nested list."""
    model = _models_seen(visibility).filter(name=name).first()
    if model is None:
        raise NotFound(f"no registered model {name!r}", code="model_not_found")
    return model


def versions_visible(*, visibility: Visibility, name: str) -> QuerySet[ModelVersion]:
    model = _model_of(visibility, name)
    return _versions(ModelVersion.objects.filter(registered_model=model))


def _versions(versions: QuerySet[ModelVersion]) -> QuerySet[ModelVersion]:
    signed = ModelSignature.objects.filter(artifact_id=OuterRef("model_artifact_id"))
    return (
        versions.select_related("registered_model", "run", "model_artifact")
        .prefetch_related(Prefetch("aliases", queryset=ModelAlias.objects.order_by("alias")))
        .annotate(signed=Exists(signed))
    )


def version_visible_get(*, visibility: Visibility, name: str, version: int) -> ModelVersion:
    """One version, with the datasets its run used."""
    found = None
    if _fits(ModelVersion, "version", version):
        found = (
            _versions(
                ModelVersion.objects.filter(
                    registered_model__in=_models_seen(visibility),
                    registered_model__name=name,
                    version=version,
                )
            )
            .prefetch_related(
                Prefetch(
                    "run__inputs",
                    queryset=RunInput.objects.select_related("dataset__artifact").order_by("pk"),
                )
            )
            .first()
        )
    if found is None:
        raise NotFound(f"no version {version} of {name!r}", code="version_not_found")
    return found


def aliases_visible(*, visibility: Visibility, name: str) -> QuerySet[ModelAlias]:
    model = _model_of(visibility, name)
    return (
        ModelAlias.objects.filter(registered_model=model)
        .select_related("registered_model", "version__model_artifact")
        .order_by("alias")
    )


def alias_history_visible(*, visibility: Visibility, name: str) -> QuerySet[AliasHistory]:
    model = _model_of(visibility, name)
    return AliasHistory.objects.filter(registered_model=model).select_related(
        "registered_model", "from_version", "to_version"
    )


# --- the pages ----------------------------------------------------------------------------


def inventory_visible(*, visibility: Visibility) -> QuerySet[RegisteredModel]:
    """The inventory page: the models one may see, by name, with their live version count and
    their aliases now. Each alias carries the verdict of the latest scan of its version's files
    (``scan_verdict``, None if never scanned) and how it last reached that version
    (``moved_by``: an ``AliasChangeSource``, None when no move was recorded)."""
    latest_scan = ModelScan.objects.filter(
        artifact_id=OuterRef("version__model_artifact_id")
    ).order_by("-scanned_at", "-pk")
    last_move = AliasHistory.objects.filter(
        registered_model_id=OuterRef("registered_model_id"),
        alias=OuterRef("alias"),
        to_version_id=OuterRef("version_id"),
    ).order_by("-changed_at", "-pk")
    aliases = (
        ModelAlias.objects.select_related("version")
        .annotate(
            scan_verdict=Subquery(latest_scan.values("verdict")[:1]),
            moved_by=Subquery(last_move.values("source")[:1]),
        )
        .order_by("alias")
    )
    return (
        _models_seen(visibility)
        .annotate(
            live_versions=Count("versions", filter=~Q(versions__status=VersionStatus.DELETED))
        )
        .prefetch_related(Prefetch("aliases", queryset=aliases))
        .order_by("name")
    )


def version_page_get(*, visibility: Visibility, name: str, version: int) -> ModelVersion:
    """The version of the version page (run, datasets, aliases), if one may see its model."""
    found = None
    if visibility.sees_model(name) and _fits(ModelVersion, "version", version):
        found = version_get(name=name, version=version)
    if found is None:
        raise NotFound(f"no version {version} of {name!r}", code="version_not_found")
    return found


# --- runs and datasets ------------------------------------------------------------------


def _versions_seen(visibility: Visibility) -> QuerySet[ModelVersion]:
    versions = ModelVersion.objects.all()
    if visibility.everything:
        return versions
    return versions.filter(registered_model__in=_models_seen(visibility))


def _runs_seen(visibility: Visibility) -> QuerySet[Run]:
    runs = Run.objects.all()
    if visibility.everything:
        return runs
    return runs.filter(pk__in=_versions_seen(visibility).values("run_id"))


def runs_visible(*, visibility: Visibility) -> QuerySet[Run]:
    """Runs that produced a version one may see, each with those versions and its datasets."""
    return _runs_seen(visibility).prefetch_related(
        Prefetch(
            "model_versions",
            queryset=_versions_seen(visibility)
            .select_related("registered_model")
            .order_by("registered_model__name", "version"),
        ),
        Prefetch(
            "inputs", queryset=RunInput.objects.select_related("dataset__artifact").order_by("pk")
        ),
    )


def run_visible_get(*, visibility: Visibility, run_id: str) -> Run:
    run = runs_visible(visibility=visibility).filter(run_id=run_id).first()
    if run is None:
        raise NotFound(f"no run {run_id!r}", code="run_not_found")
    return run


def datasets_visible(*, visibility: Visibility) -> QuerySet[Dataset]:
    """MLflow dataset records used by a run one may see (all of them, for those who see
    everything: a dataset no model used yet is theirs only)."""
    datasets = Dataset.objects.select_related("artifact")
    if not visibility.everything:
        used = RunInput.objects.filter(run__in=_runs_seen(visibility).values("pk"))
        datasets = datasets.filter(pk__in=used.values("dataset_id"))
    return datasets


def dataset_visible_get(*, visibility: Visibility, dataset_id: int) -> Dataset:
    """One dataset record, with the runs one may see that used it."""
    found = None
    if _fits(Dataset, "id", dataset_id):
        visible_runs = _runs_seen(visibility).values("pk")
        found = (
            datasets_visible(visibility=visibility)
            .filter(pk=dataset_id)
            .prefetch_related(
                Prefetch(
                    "run_inputs",
                    queryset=RunInput.objects.filter(run__in=visible_runs)
                    .select_related("run")
                    .order_by("pk"),
                )
            )
            .first()
        )
    if found is None:
        raise NotFound(f"no dataset {dataset_id}", code="dataset_not_found")
    return found


# --- artifacts and attestations ---------------------------------------------------------


def artifacts_visible(
    *, visibility: Visibility, scope: provenance_selectors.LineageScope
) -> QuerySet[Artifact]:
    """Model files of visible versions, datasets of visible runs, and the artifacts of the
    visible lineage (``scope``, from ``provenance_selectors.lineage_scope``)."""
    if visibility.everything or scope is None:
        return Artifact.objects.all()
    return Artifact.objects.filter(
        Q(pk__in=_versions_seen(visibility).values("model_artifact_id"))
        | Q(pk__in=datasets_visible(visibility=visibility).values("artifact_id"))
        | Q(pk__in=list(scope.artifacts))
    )


@dataclass(frozen=True)
class ArtifactDetail:
    artifact: Artifact
    versions: list[ModelVersion]
    datasets: list[Dataset]
    attestations: list[Attestation]


def artifact_visible_get(*, visibility: Visibility, digest: str) -> ArtifactDetail:
    """An artifact by its sha256, with the versions and datasets that are it one may see, and
    the attestations about it one may see."""
    scope = provenance_selectors.lineage_scope(visibility)
    artifact = (
        artifacts_visible(visibility=visibility, scope=scope)
        .filter(digest=digest)
        .select_related("manifest")
        .first()
    )
    if artifact is None:
        raise NotFound(f"no artifact sha256:{digest}", code="artifact_not_found")
    return ArtifactDetail(
        artifact=artifact,
        versions=list(
            _versions_seen(visibility)
            .filter(model_artifact=artifact)
            .select_related("registered_model")
            .order_by("registered_model__name", "version")
        ),
        datasets=list(datasets_visible(visibility=visibility).filter(artifact=artifact)),
        attestations=list(
            _attestations(
                _attestations_seen(visibility, scope).filter(subjects__artifact=artifact)
            ).order_by("-pk")
        ),
    )


# The subjects of each attestation ``_attestations`` reads, as a plain list on the instance
# (``subjects_of``). Prefetched into the related manager instead, Django built a filtered
# queryset per attestation only to hold its rows: a third of a page of fifty's time.
SUBJECT_ROWS = "subject_rows"


def _attestations(attestations: QuerySet[Attestation]) -> QuerySet[Attestation]:
    return (
        attestations.select_related("signer", "signing_key")
        .prefetch_related(
            Prefetch(
                "subjects",
                queryset=_subjects_in_order(),
                to_attr=SUBJECT_ROWS,
            )
        )
        .defer("envelope", "statement")
    )


def subjects_of(attestation: Attestation) -> list[AttestationSubject]:
    """An attestation's subjects, by primary key: those ``_attestations`` read with it, or
    else a query."""
    rows: list[AttestationSubject] | None = attestation.__dict__.get(SUBJECT_ROWS)
    if rows is None:
        return list(_subjects_in_order().filter(attestation=attestation))
    return rows


def _subjects_in_order() -> QuerySet[AttestationSubject]:
    return AttestationSubject.objects.select_related("artifact").order_by("pk")


def _attestations_seen(
    visibility: Visibility, scope: provenance_selectors.LineageScope
) -> QuerySet[Attestation]:
    """The attestations every subject of which one may see: its artifact is visible, and it is
    not named as a version of a model one may not see. An attestation is signed whole, so it
    is shown whole or not at all: one about a visible version and an invisible one, or about
    files a visible version shares with an invisible one's, would tell of the invisible."""
    attestations = Attestation.objects.all()
    if visibility.everything or scope is None:
        return attestations
    seen = artifacts_visible(visibility=visibility, scope=scope)
    unseen = AttestationSubject.objects.filter(
        ~Q(artifact__in=seen)
        | (~Q(named_model="") & ~Q(named_model__in=list(visibility.model_names)))
    )
    return attestations.exclude(pk__in=unseen.values("attestation_id"))


def attestations_visible(*, visibility: Visibility) -> QuerySet[Attestation]:
    """Attestations one may see whole (``_attestations_seen``); the statement and bytes are
    not loaded."""
    scope = provenance_selectors.lineage_scope(visibility)
    return _attestations(_attestations_seen(visibility, scope))


@dataclass(frozen=True)
class AttestationDetail:
    attestation: Attestation
    edges: list[LineageEdge]


def attestation_visible_get(*, visibility: Visibility, envelope_digest: str) -> AttestationDetail:
    """An attestation with its statement, and the lineage edges it proves that one may see."""
    scope = provenance_selectors.lineage_scope(visibility)
    attestation = (
        _attestations(_attestations_seen(visibility, scope).filter(envelope_digest=envelope_digest))
        .defer(None)
        .defer("envelope")
        .first()
    )
    if attestation is None:
        raise NotFound(f"no attestation {envelope_digest}", code="attestation_not_found")
    return AttestationDetail(
        attestation=attestation,
        edges=provenance_selectors.scoped_edges_of(attestation_id=attestation.pk, scope=scope),
    )


def attestation_envelope_get(*, visibility: Visibility, envelope_digest: str) -> Attestation:
    """An attestation's bytes, exactly as they were signed."""
    scope = provenance_selectors.lineage_scope(visibility)
    attestation = (
        _attestations_seen(visibility, scope)
        .filter(envelope_digest=envelope_digest)
        .only("envelope", "format", "envelope_digest")
        .first()
    )
    if attestation is None:
        raise NotFound(f"no attestation {envelope_digest}", code="attestation_not_found")
    return attestation


def version_provenance(*, version: ModelVersion, visibility: Visibility) -> VersionProvenance:
    """The version page's provenance, narrowed to what ``visibility`` sees (the attestations
    about its files too: ``_attestations_seen``). A fixed number of queries however large the
    graph: one walk per direction returns its edges and nodes."""
    name = f"{version.registered_model.name}/{version.version}"
    digest = version.model_artifact.digest if version.model_artifact else None
    scope = provenance_selectors.lineage_scope(visibility)  # once, for both
    attestations = (
        list(
            _attestations(_attestations_seen(visibility, scope))
            .filter(subjects__artifact__digest=digest)
            .distinct()
            .order_by("-received_at")
        )
        if digest
        else []
    )
    return VersionProvenance(
        lineage=version_lineage(name=name, scope=scope),
        attestations=attestations,
        last_verification=provenance_selectors.latest_registry_statement(
            subject_name=name, predicate_type=PREDICATE_VERIFICATION
        ),
    )


# --- lineage ----------------------------------------------------------------------------


def lineage_start(
    ref: str, *, visibility: Visibility, scope: provenance_selectors.LineageScope
) -> list[int]:
    """The ids of the nodes ``ref`` names, among those one may see; ``dataset:<id>`` names the
    registry's dataset record ``<id>`` by the sha256 an attestation gave it."""
    kind, _, key = ref.partition(":")
    if kind == NodeKind.DATASET and key.isascii() and key.isdigit():
        dataset = (
            datasets_visible(visibility=visibility).filter(pk=int(key)).first()
            if _fits(Dataset, "id", int(key))
            else None
        )
        if dataset is None or dataset.artifact is None:
            raise NotFound(f"no lineage node {ref!r}", code="lineage_node_not_found")
        ref = f"dataset:sha256:{dataset.artifact.digest}"
    return scoped_node_ids(ref, scope=scope)


def _walk_start(
    ref: str, *, visibility: Visibility, scope: provenance_selectors.LineageScope
) -> provenance_selectors.Start:
    """Where a walk from ``ref`` starts. For a caller who sees everything, a node named by kind
    and key is found by the walk's own statement (a round trip fewer); for anyone else the
    start is looked up and checked against what they may see before anything is walked."""
    kind, _, key = ref.partition(":")
    named = not (kind == NodeKind.DATASET and key.isascii() and key.isdigit())
    if scope is None and named:
        found = provenance_selectors.node_key(ref)
        if found is not None:
            return found
    return lineage_start(ref, visibility=visibility, scope=scope)


def lineage_visible(
    *, ref: str, direction: provenance_selectors.Direction, depth: int, visibility: Visibility
) -> GraphRows:
    """The lineage around ``ref`` one may see, as rows (one recursive walk per direction)."""
    scope = provenance_selectors.lineage_scope(visibility)
    start = _walk_start(ref, visibility=visibility, scope=scope)
    return provenance_selectors.scoped_graph(
        start=start, direction=direction, depth=depth, scope=scope
    )


def lineage_path_visible(*, source: str, target: str, visibility: Visibility) -> GraphRows:
    """The edges on the paths between two nodes (either way round) one may see."""
    scope = provenance_selectors.lineage_scope(visibility)
    top = lineage_start(source, visibility=visibility, scope=scope)
    bottom = lineage_start(target, visibility=visibility, scope=scope)
    return provenance_selectors.scoped_path(source=top, target=bottom, scope=scope)


def lineage_impact_visible(
    *, ref: str, depth: int, visibility: Visibility
) -> provenance_selectors.ImpactReport:
    """The versions downstream of ``ref`` and the aliases on them now, that one may see."""
    scope = provenance_selectors.lineage_scope(visibility)
    start = _walk_start(ref, visibility=visibility, scope=scope)
    return provenance_selectors.scoped_impact(start=start, depth=depth, scope=scope)
