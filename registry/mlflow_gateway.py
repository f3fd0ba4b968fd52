"""The one place that talks to MLflow.

Everything MLflow returns is copied into plain frozen dataclasses here, so the rest of the
registry never touches MLflow entities, and every MLflow failure is translated into
:class:`MlflowUnavailable` (worth retrying) or :class:`MlflowError` (not).

MLflow is not trusted for integrity (ARCHITECTURE.md, trust boundaries): what it reports is
mirrored as a claim; later issues re-hash artifacts and sign what the registry observed.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from django.conf import settings

from config.errors import DomainError, Unavailable

# MLflow's HTTP client retries seven times with a doubling back-off by default (minutes of
# waiting). The registry retries whole tasks with Celery instead, so MLflow must fail fast.
os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", str(settings.MLFLOW_REQUEST_TIMEOUT))
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

from mlflow.entities import ViewType
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

RUN_BATCH_SIZE = 100
PAGE_SIZE = 1000
_LOGGED_MODEL_SOURCE = re.compile(r"^models:/(m-[0-9a-f]{32})$")
T = TypeVar("T")
ProgressCallback = Callable[[str, int, int | None], None]


class MlflowUnavailable(Unavailable):
    default_code = "mlflow_unavailable"


class MlflowError(DomainError):
    status = 502
    default_code = "mlflow_error"


@dataclass(frozen=True)
class MlflowModel:
    name: str
    description: str
    tags: dict[str, str]
    created_at: datetime | None
    updated_at: datetime | None
    aliases: dict[str, int]


@dataclass(frozen=True)
class MlflowVersion:
    name: str
    version: int
    source: str
    run_id: str
    logged_model_id: str
    status: str
    user_id: str
    description: str
    tags: dict[str, str]
    created_at: datetime | None
    updated_at: datetime | None


@dataclass(frozen=True)
class MlflowDatasetInput:
    name: str
    digest: str
    source_type: str
    source: str
    schema: str | None
    profile: str | None
    context: str


@dataclass(frozen=True)
class MlflowRun:
    run_id: str
    experiment_id: str
    run_name: str
    user: str
    status: str
    lifecycle_stage: str
    start_time: datetime | None
    end_time: datetime | None
    artifact_uri: str
    params: dict[str, str]
    metrics: dict[str, float]
    tags: dict[str, str]
    inputs: tuple[MlflowDatasetInput, ...]


@dataclass
class RegistrySnapshot:
    """Everything the registry mirrors, read from MLflow before anything is written."""

    models: list[MlflowModel] = field(default_factory=list)
    versions: list[MlflowVersion] = field(default_factory=list)
    runs: dict[str, MlflowRun] = field(default_factory=dict)


def _translate(call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run an MLflow call, mapping its failures onto the registry's two error kinds."""
    try:
        return call(*args, **kwargs)
    except MlflowException as exc:
        if exc.error_code in {"INVALID_PARAMETER_VALUE", "RESOURCE_DOES_NOT_EXIST"}:
            raise MlflowError(f"MLflow refused the request: {exc.message}") from exc
        raise MlflowUnavailable(f"MLflow is unavailable: {scrub_credentials(exc.message)}") from exc
    except (OSError, ConnectionError) as exc:
        raise MlflowUnavailable(f"MLflow is unavailable: {scrub_credentials(str(exc))}") from exc
    except Exception as exc:  # requests/sqlalchemy errors surface as many types
        raise MlflowUnavailable(
            f"MLflow is unavailable: {type(exc).__name__}: {scrub_credentials(str(exc))}"
        ) from exc


_URL_CREDENTIALS = re.compile(r"(\w+://)[^/@\s]+@")


def scrub_credentials(message: str) -> str:
    """First line of an error, without any credentials embedded in URLs (logs, health)."""
    first = message.splitlines()[0][:300] if message else ""
    return _URL_CREDENTIALS.sub(r"\1***@", first)


def _when(millis: int | None) -> datetime | None:
    return datetime.fromtimestamp(millis / 1000, tz=UTC) if millis else None


def ensure_local_store() -> None:
    """Create the embedded SQLite MLflow store, with artifacts under var/, if it is not there.

    MLflow would otherwise create it on first use with artifacts in ``./mlruns`` relative to
    whatever directory the first client happened to run in.
    """
    uri = settings.MLFLOW_TRACKING_URI
    if not uri.startswith("sqlite:///"):
        return
    db_path = Path(uri.removeprefix("sqlite:///"))
    if db_path.exists():
        return
    db_path.parent.mkdir(parents=True, exist_ok=True)
    Path(settings.MLFLOW_DEFAULT_ARTIFACT_ROOT).mkdir(parents=True, exist_ok=True)
    from mlflow.store.tracking.sqlalchemy_store import (  # noqa: PLC0415  (heavy, rarely needed)
        SqlAlchemyStore,
    )

    _translate(SqlAlchemyStore, uri, settings.MLFLOW_DEFAULT_ARTIFACT_ROOT)


@functools.lru_cache(maxsize=4)
def _client_for(uri: str) -> MlflowClient:
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def client() -> MlflowClient:
    ensure_local_store()
    return _client_for(settings.MLFLOW_TRACKING_URI)


def _pages(search: Callable[..., Any], **kwargs: Any) -> Iterator[Any]:
    """Every item of a paginated MLflow search."""
    token: str | None = None
    while True:
        page = _translate(search, max_results=PAGE_SIZE, page_token=token, **kwargs)
        yield from page
        token = page.token
        if not token:
            return


def ping() -> None:
    """Raise MlflowUnavailable unless MLflow answers a registry query."""
    uri = settings.MLFLOW_TRACKING_URI
    if urlsplit(uri).scheme in {"http", "https"}:
        import requests  # noqa: PLC0415  (only for HTTP tracking servers)

        try:
            response = requests.get(
                uri.rstrip("/") + "/health", timeout=settings.HEALTH_CHECK_TIMEOUT
            )
        except requests.RequestException as exc:
            raise MlflowUnavailable(f"MLflow is unavailable: {type(exc).__name__}") from exc
        if response.status_code != 200:
            raise MlflowUnavailable(f"MLflow /health answered {response.status_code}")
        return
    _translate(client().search_registered_models, max_results=1)


def _model(entity: Any) -> MlflowModel:
    return MlflowModel(
        name=entity.name,
        description=entity.description or "",
        tags=dict(entity.tags or {}),
        created_at=_when(entity.creation_timestamp),
        updated_at=_when(entity.last_updated_timestamp),
        aliases={alias: int(version) for alias, version in (entity.aliases or {}).items()},
    )


def _version(entity: Any) -> MlflowVersion:
    source = entity.source or ""
    logged_model_id = getattr(entity, "model_id", None) or ""
    if not logged_model_id and (match := _LOGGED_MODEL_SOURCE.match(source)):
        logged_model_id = match.group(1)
    return MlflowVersion(
        name=entity.name,
        version=int(entity.version),
        source=source,
        run_id=entity.run_id or "",
        logged_model_id=logged_model_id,
        status=entity.status or "READY",
        user_id=entity.user_id or "",
        description=entity.description or "",
        tags=dict(entity.tags or {}),
        created_at=_when(entity.creation_timestamp),
        updated_at=_when(entity.last_updated_timestamp),
    )


def _dataset_input(entity: Any) -> MlflowDatasetInput:
    dataset = entity.dataset
    tags = {tag.key: tag.value for tag in entity.tags or []}
    return MlflowDatasetInput(
        name=dataset.name,
        digest=dataset.digest,
        source_type=dataset.source_type or "",
        source=dataset.source or "",
        schema=dataset.schema,
        profile=dataset.profile,
        context=tags.get("mlflow.data.context", ""),
    )


def _run(entity: Any) -> MlflowRun:
    info, data = entity.info, entity.data
    inputs = entity.inputs.dataset_inputs if entity.inputs else []
    return MlflowRun(
        run_id=info.run_id,
        experiment_id=str(info.experiment_id),
        run_name=info.run_name or "",
        user=info.user_id or "",
        status=info.status or "",
        lifecycle_stage=info.lifecycle_stage or "",
        start_time=_when(info.start_time),
        end_time=_when(info.end_time),
        artifact_uri=info.artifact_uri or "",
        params=dict(data.params),
        metrics={key: float(value) for key, value in data.metrics.items()},
        tags={k: v for k, v in data.tags.items() if not k.startswith("mlflow.log-model")},
        inputs=tuple(_dataset_input(item) for item in inputs),
    )


def _chunks(items: Sequence[str], size: int) -> Iterable[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _quoted(name: str) -> str:
    return "'" + name.replace("\\", "\\\\").replace("'", "\\'") + "'"


def fetch_runs(
    run_ids: Sequence[str], on_progress: ProgressCallback | None = None
) -> dict[str, MlflowRun]:
    """Fetch runs in batches of RUN_BATCH_SIZE (one search per batch, not one call per run)."""
    mlflow_client = client()
    experiment_ids = [
        e.experiment_id for e in _pages(mlflow_client.search_experiments, view_type=ViewType.ALL)
    ]
    runs: dict[str, MlflowRun] = {}
    for batch in _chunks(list(run_ids), RUN_BATCH_SIZE):
        run_filter = "attributes.run_id IN (" + ",".join(_quoted(r) for r in batch) + ")"
        found = _translate(
            mlflow_client.search_runs,
            experiment_ids,
            filter_string=run_filter,
            run_view_type=ViewType.ALL,
            max_results=len(batch),
        )
        runs.update((entity.info.run_id, _run(entity)) for entity in found)
        if on_progress:
            on_progress("runs", len(runs), len(run_ids))
    return runs


def fetch_snapshot(
    *, model_name: str | None = None, on_progress: ProgressCallback | None = None
) -> RegistrySnapshot:
    """Read the registry (or one model of it) from MLflow: models, versions, their runs."""
    mlflow_client = client()
    name_filter = f"name = {_quoted(model_name)}" if model_name else None
    snapshot = RegistrySnapshot()
    snapshot.models = [
        _model(entity)
        for entity in _pages(mlflow_client.search_registered_models, filter_string=name_filter)
    ]
    for entity in _pages(mlflow_client.search_model_versions, filter_string=name_filter):
        snapshot.versions.append(_version(entity))
        if on_progress:
            on_progress("versions", len(snapshot.versions), None)
    run_ids = sorted({v.run_id for v in snapshot.versions if v.run_id})
    if run_ids:
        snapshot.runs = fetch_runs(run_ids, on_progress)
    return snapshot


def download_model_version(name: str, version: int, destination: Path) -> Path:
    """Copy a version's artifacts from the MLflow artifact store into ``destination``.

    The storage location comes from the registry (``get_model_version_download_uri``), so the
    files are read from the artifact store itself, whatever the version's source URI says.
    """
    import mlflow.artifacts  # noqa: PLC0415  (heavy; only workers hash models)

    uri = settings.MLFLOW_TRACKING_URI
    location = _translate(client().get_model_version_download_uri, name, str(version))
    destination.mkdir(parents=True, exist_ok=True)
    # mlflow-artifacts:/ locations resolve through the process's tracking URI.
    mlflow.set_tracking_uri(uri)
    downloaded = _translate(
        mlflow.artifacts.download_artifacts,
        artifact_uri=location,
        dst_path=str(destination),
        tracking_uri=uri,
    )
    return Path(downloaded)


def alias_version(name: str, alias: str) -> int | None:
    """The version ``alias`` points at in MLflow now, or None when it is not set."""
    try:
        entity = _translate(client().get_model_version_by_alias, name, alias)
    except MlflowError:  # MLflow answers "no such alias" as an invalid parameter
        return None
    return int(entity.version)


def alias_set(name: str, alias: str, version: int) -> None:
    """Point ``alias`` at ``version`` (idempotent: setting it where it is changes nothing)."""
    _translate(client().set_registered_model_alias, name, alias, str(version))


def alias_delete(name: str, alias: str) -> None:
    """Remove ``alias`` (idempotent: removing an alias that is not set is not an error)."""
    if alias_version(name, alias) is not None:
        _translate(client().delete_registered_model_alias, name, alias)


def webhook_ensure(*, name: str, url: str, secret: str, events: Sequence[str]) -> str:
    """Create or update the registry's webhook in MLflow; returns its id."""
    mlflow_client = client()
    for hook in _translate(mlflow_client.list_webhooks):
        if hook.name == name:
            _translate(
                mlflow_client.update_webhook,
                hook.webhook_id,
                url=url,
                events=list(events),
                secret=secret,
                status="ACTIVE",
            )
            return str(hook.webhook_id)
    created = _translate(
        mlflow_client.create_webhook, name=name, url=url, events=list(events), secret=secret
    )
    return str(created.webhook_id)


__all__ = [
    "MlflowDatasetInput",
    "MlflowError",
    "MlflowModel",
    "MlflowRun",
    "MlflowUnavailable",
    "MlflowVersion",
    "RegistrySnapshot",
    "alias_delete",
    "alias_set",
    "alias_version",
    "ensure_local_store",
    "fetch_snapshot",
    "ping",
    "scrub_credentials",
    "webhook_ensure",
]
