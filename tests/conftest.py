"""Fixtures shared by the whole suite: a real MLflow store per test, and one persona per role."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import pytest
from django.contrib.auth.models import User
from mlflow.entities import Dataset as MlflowDatasetEntity
from mlflow.entities import DatasetInput, InputTag
from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore
from mlflow.tracking import MlflowClient

from compliance.models import SecurityRole
from compliance.policies import default_policies_seed
from compliance.services import role_catalogue_install, role_grant
from registry import mlflow_gateway


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Keep each phase's report on the test item, so fixtures can react to a failure."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


PERSONAS = {
    "alice": "model_developer",
    "bob": "model_validator",
    "carol": "security_architect",
    "dave": "compliance_officer",
    "erin": "risk_owner",
    "frank": "data_steward",
    "grace": "mlops_engineer",
    "heidi": "security_operations",
}


@pytest.fixture(scope="session", autouse=True)
def _flush_through_append_only_triggers() -> Iterator[None]:
    """Transactional tests end with a flush, which the log tables' triggers refuse: suspend
    them around the flush of the *test* database only."""
    from django.core.management.commands import flush

    from provenance.db import triggers_suspended

    original = flush.Command.handle

    def handle(self: flush.Command, **options: Any) -> None:
        with triggers_suspended():
            original(self, **options)

    flush.Command.handle = handle  # type: ignore[method-assign]
    yield
    flush.Command.handle = original  # type: ignore[method-assign]


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _default_roles(request: pytest.FixtureRequest) -> None:
    """Transactional tests flush the database, seeded roles included: put them back."""
    uses_db = {"db", "transactional_db"} & set(request.fixturenames)
    if uses_db or request.node.get_closest_marker("django_db"):
        request.getfixturevalue("_django_db_helper")
        if not SecurityRole.objects.filter(key="risk_owner").exists():
            role_catalogue_install()
            default_policies_seed()


@pytest.fixture(scope="session")
def mlflow_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An initialised MLflow SQLite store, made once; each test gets a copy (init takes seconds)."""
    root = tmp_path_factory.mktemp("mlflow-template")
    SqlAlchemyStore(f"sqlite:///{root / 'mlflow.db'}", str(root / "artifacts"))
    return root / "mlflow.db"


@dataclass
class MlflowStore:
    """A real MLflow tracking + registry store (SQLite) the registry under test is pointed at."""

    uri: str
    client: MlflowClient
    artifact_root: Path

    def run(
        self,
        *,
        user: str = "alice",
        params: dict[str, str] | None = None,
        metrics: dict[str, float] | None = None,
        datasets: list[tuple[str, str, str]] | None = None,
    ) -> str:
        """Create a finished run; ``datasets`` are (name, digest, context) logged as inputs."""
        run = self.client.create_run("0", tags={"mlflow.user": user}, run_name=f"train-{user}")
        run_id: str = run.info.run_id
        for key, value in (params or {}).items():
            self.client.log_param(run_id, key, value)
        for key, number in (metrics or {}).items():
            self.client.log_metric(run_id, key, number)
        if datasets:
            inputs = [
                DatasetInput(
                    MlflowDatasetEntity(
                        name=name,
                        digest=digest,
                        source_type="s3",
                        source=f'{{"uri": "s3://data/{name}.parquet"}}',
                        schema='{"mlflow_colspec": [{"type": "double", "name": "amount"}]}',
                        profile='{"num_rows": 1000}',
                    ),
                    tags=[InputTag("mlflow.data.context", context)],
                )
                for name, digest, context in datasets
            ]
            self.client.log_inputs(run_id, datasets=inputs)
        self.client.set_terminated(run_id)
        return run_id

    def version(self, name: str, run_id: str | None = None, **run_kwargs: Any) -> int:
        """Register a version of ``name`` (creating the model if needed) from a run."""
        if not self.client.search_registered_models(filter_string=f"name = '{name}'"):
            self.client.create_registered_model(name)
        run_id = run_id or self.run(**run_kwargs)
        created = self.client.create_model_version(
            name, source=f"runs:/{run_id}/model", run_id=run_id
        )
        return int(created.version)


@pytest.fixture
def mlflow_store(mlflow_template: Path, tmp_path: Path, settings: Any) -> Iterator[MlflowStore]:
    db_path = tmp_path / "mlflow.db"
    shutil.copyfile(mlflow_template, db_path)
    uri = f"sqlite:///{db_path}"
    settings.MLFLOW_TRACKING_URI = uri
    settings.MLFLOW_DEFAULT_ARTIFACT_ROOT = str(tmp_path / "artifacts")
    previous_uri = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    yield MlflowStore(uri=uri, client=MlflowClient(uri, uri), artifact_root=tmp_path / "artifacts")
    mlflow.set_tracking_uri(previous_uri)
    mlflow.set_registry_uri(previous_uri)
    mlflow_gateway._client_for.cache_clear()


@pytest.fixture
def mlflow_down(settings: Any, unused_port: int) -> str:
    """Point the registry at an MLflow server that is not there."""
    uri = f"http://127.0.0.1:{unused_port}"
    settings.MLFLOW_TRACKING_URI = uri
    return uri


@pytest.fixture
def unused_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def make_user(username: str, **extra: Any) -> User:
    user = User.objects.create_user(username=username, password=f"{username}-Pa55word!", **extra)
    return user


@pytest.fixture
def personas(db: None) -> dict[str, User]:
    """One user per default role, each holding that role globally (alice is the developer…)."""
    users = {}
    for username, role_key in PERSONAS.items():
        user = make_user(username)
        role_grant(
            user=user,
            role=SecurityRole.objects.get(key=role_key),
            acting_user=None,
            actor_name="test-setup",
        )
        users[username] = user
    return users


@pytest.fixture
def outsider(db: None) -> User:
    """Logged in, but holding no role at all."""
    return make_user("mallory")


@pytest.fixture
def superuser(db: None) -> User:
    return make_user("root", is_staff=True, is_superuser=True)


@pytest.fixture
def redis_url() -> str:
    """A Redis to cache in: CACHE_URL when it names one (CI), else the local server's database 1
    if it answers; skipped without one, unless REQUIRE_REAL_SERVICES is set."""
    import os
    import socket

    configured = os.environ.get("CACHE_URL", "")
    if configured.startswith(("redis:", "rediss:")):
        return configured
    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=1).close()
    except OSError:
        if os.environ.get("REQUIRE_REAL_SERVICES"):
            pytest.fail("REQUIRE_REAL_SERVICES is set but no Redis answers on 127.0.0.1:6379")
        pytest.skip("no Redis on 127.0.0.1:6379")
    return "redis://127.0.0.1:6379/1"


@pytest.fixture
def test_database_env(transactional_db: None) -> dict[str, str]:
    """Environment for a child process (manage.py, a Celery worker) that must see the test
    database; the test must commit what the child is to see, hence ``transactional_db``."""
    import os

    from django.db import connection

    params = connection.settings_dict
    if connection.vendor == "sqlite":
        url = f"sqlite:///{params['NAME']}"
    else:
        auth = params["USER"] + (f":{params['PASSWORD']}" if params["PASSWORD"] else "")
        url = f"postgres://{auth}@{params['HOST']}:{params['PORT'] or 5432}/{params['NAME']}"
    return {**os.environ, "DATABASE_URL": url}
