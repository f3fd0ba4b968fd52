"""Configuration from the environment: production mode refuses to start on a missing or
malformed variable and names it; embedded mode needs nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest

GOOD = {
    "DEBUG": "false",
    "SECRET_KEY": "k" * 20 + "-production-secret-" + "q" * 30,
    "ALLOWED_HOSTS": "registry.example.org",
    "DATABASE_URL": "postgres://registry@db.internal:5432/registry",
    "CELERY_BROKER_URL": "redis://broker.internal:6379/0",
    "MLFLOW_TRACKING_URI": "https://mlflow.internal",
}


def load_settings(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in GOOD and k != "VAR_DIR"}
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); print('started')"],
        env={**clean, "DJANGO_SETTINGS_MODULE": "config.settings", **env},
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def test_production_settings_load_when_everything_is_given() -> None:
    result = load_settings(GOOD)
    assert result.returncode == 0, result.stderr
    assert "started" in result.stdout


@pytest.mark.parametrize(
    "variable",
    ["SECRET_KEY", "ALLOWED_HOSTS", "DATABASE_URL", "CELERY_BROKER_URL", "MLFLOW_TRACKING_URI"],
)
def test_production_refuses_to_start_without_a_required_variable(variable: str) -> None:
    env = {k: v for k, v in GOOD.items() if k != variable}

    result = load_settings(env)

    assert result.returncode != 0
    assert f"ImproperlyConfigured: {variable}" in result.stderr


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("DEBUG", "maybe"),
        ("DATABASE_URL", "mysql://db/registry"),
        ("CELERY_BROKER_URL", "carrier-pigeon://loft"),
        ("MLFLOW_TRACKING_URI", "ftp://mlflow"),
        ("CACHE_URL", "memcached://cache.internal:11211"),
        ("SECRET_KEY", "short"),
        ("MLFLOW_SYNC_INTERVAL", "soon"),
        ("MLFLOW_SYNC_INTERVAL", "1"),
    ],
)
def test_a_malformed_value_stops_start_up_naming_the_variable(variable: str, value: str) -> None:
    result = load_settings({**GOOD, variable: value})

    assert result.returncode != 0
    assert f"ImproperlyConfigured: {variable}" in result.stderr
    assert value not in result.stderr or variable != "SECRET_KEY"


def test_a_secret_can_come_from_a_file(tmp_path: os.PathLike[str]) -> None:
    secret_file = os.path.join(tmp_path, "secret_key")
    with open(secret_file, "w") as handle:
        handle.write(GOOD["SECRET_KEY"] + "\n")
    env = {k: v for k, v in GOOD.items() if k != "SECRET_KEY"}

    result = load_settings({**env, "SECRET_KEY_FILE": secret_file})

    assert result.returncode == 0, result.stderr


def test_an_unreadable_secret_file_is_named() -> None:
    env = {k: v for k, v in GOOD.items() if k != "SECRET_KEY"}

    result = load_settings({**env, "SECRET_KEY_FILE": "/nonexistent/secret"})

    assert result.returncode != 0
    assert "SECRET_KEY_FILE: cannot read /nonexistent/secret" in result.stderr


def test_embedded_mode_needs_no_variable(tmp_path: os.PathLike[str]) -> None:
    result = load_settings({"DEBUG": "true", "VAR_DIR": str(tmp_path)})
    assert result.returncode == 0, result.stderr


@pytest.mark.django_db
def test_passwords_are_hashed_with_argon2id_and_older_hashes_upgraded_at_sign_in(
    settings: Any,
) -> None:
    from django.contrib.auth.hashers import make_password
    from django.contrib.auth.models import User

    from config import settings as project_settings

    settings.PASSWORD_HASHERS = project_settings.PASSWORD_HASHERS
    assert make_password("a long passphrase").startswith("argon2$argon2id$")
    user = User.objects.create(
        username="legacy", password=make_password("a long passphrase", hasher="pbkdf2_sha256")
    )

    assert user.check_password("a long passphrase")

    user.refresh_from_db()
    assert user.password.startswith("argon2$argon2id$")
    assert not user.check_password("another passphrase")


def database_settings(env: dict[str, str]) -> dict[str, Any]:
    code = (
        "import django, json; django.setup(); from django.conf import settings; "
        "db = settings.DATABASES['default']; "
        "print(json.dumps({'ENGINE': db['ENGINE'], 'OPTIONS': db.get('OPTIONS', {}),"
        " 'CONN_HEALTH_CHECKS': db.get('CONN_HEALTH_CHECKS')}))"
    )
    clean = {k: v for k, v in os.environ.items() if k not in GOOD and k != "VAR_DIR"}
    result = subprocess.run(
        [sys.executable, "-c", code],
        env={**clean, "DJANGO_SETTINGS_MODULE": "config.settings", **env},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    loaded: dict[str, Any] = json.loads(result.stdout)
    return loaded


def test_postgresql_runs_on_the_registry_backend_with_prepared_statements() -> None:
    loaded = database_settings(GOOD)

    assert loaded["ENGINE"] == "config.postgres"
    assert loaded["CONN_HEALTH_CHECKS"] is True
    assert loaded["OPTIONS"]["server_side_binding"] is True
    assert loaded["OPTIONS"]["prepare_threshold"] == 5


def test_prepared_statements_can_be_turned_off_for_a_pooler() -> None:
    loaded = database_settings({**GOOD, "DATABASE_PREPARED_STATEMENTS": "false"})

    assert loaded["ENGINE"] == "config.postgres"
    assert "server_side_binding" not in loaded["OPTIONS"]
    assert "prepare_threshold" not in loaded["OPTIONS"]
