"""Settings for the SecMLOps Registry, driven only by environment variables.

Two modes:

* embedded (``DEBUG=true``, what ``make run`` and ``make test`` use): every variable has a
  working default under ``var/`` — SQLite, a SQLite-backed MLflow store, a Celery broker kept
  in a SQLite file — so nothing but Python is needed;
* production (``DEBUG`` unset or false): ``SECRET_KEY``, ``ALLOWED_HOSTS``, ``DATABASE_URL``,
  ``CELERY_BROKER_URL`` and ``MLFLOW_TRACKING_URI`` are required, and start-up stops with
  ``ImproperlyConfigured`` naming the variable that is missing or malformed.

A variable ``NAME`` that holds a secret can instead be given as ``NAME_FILE``, a path whose
contents are read (Docker/Kubernetes secrets). docs/configuration.md lists every variable.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import django_stubs_ext
import environ
from django.core.exceptions import ImproperlyConfigured

# Lets admin.ModelAdmin[Model] and QuerySet[Model] be subscripted at run time, as typed.
django_stubs_ext.monkeypatch()

BASE_DIR = Path(__file__).resolve().parent.parent
env = environ.Env()


def _read_secret(name: str) -> str | None:
    """Return NAME, or the contents of the file NAME_FILE points at, or None."""
    file_var = f"{name}_FILE"
    if file_var in os.environ:
        path = Path(os.environ[file_var])
        try:
            return path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ImproperlyConfigured(f"{file_var}: cannot read {path}: {exc.strerror}") from exc
    return os.environ.get(name)


def _bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name}: expected true or false, got {raw!r}")


def _int(name: str, default: int, *, minimum: int = 0) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}: expected an integer, got {raw!r}") from None
    if value < minimum:
        raise ImproperlyConfigured(f"{name}: must be at least {minimum}, got {value}")
    return value


def _required(name: str, value: str | None, embedded_default: str) -> str:
    if value:
        return value
    if DEBUG:
        return embedded_default
    raise ImproperlyConfigured(f"{name} is required in production mode (DEBUG is false)")


def _url(name: str, default: str, schemes: set[str]) -> str:
    return _scheme_checked(name, _required(name, _read_secret(name), default), schemes)


def _scheme_checked(name: str, value: str, schemes: set[str]) -> str:
    scheme = urlsplit(value).scheme
    if scheme not in schemes:
        allowed = ", ".join(sorted(schemes))
        raise ImproperlyConfigured(f"{name}: scheme {scheme!r} is not one of {allowed}")
    return value


DEBUG = _bool("DEBUG", default=False)
VAR_DIR = Path(os.environ.get("VAR_DIR") or BASE_DIR / "var").resolve()

# --- core -----------------------------------------------------------------------------------

_DEV_SECRET_KEY = "embedded-development-key-never-use-in-production-" + "x" * 16
SECRET_KEY = _required("SECRET_KEY", _read_secret("SECRET_KEY"), _DEV_SECRET_KEY)
if not DEBUG and (len(SECRET_KEY) < 50 or SECRET_KEY == _DEV_SECRET_KEY):
    raise ImproperlyConfigured("SECRET_KEY: must be at least 50 random characters in production")

_hosts = os.environ.get("ALLOWED_HOSTS", "")
ALLOWED_HOSTS = [h.strip() for h in _hosts.split(",") if h.strip()]
if not ALLOWED_HOSTS:
    if not DEBUG:
        raise ImproperlyConfigured("ALLOWED_HOSTS is required in production mode (comma-separated)")
    ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver", "[::1]"]
CSRF_TRUSTED_ORIGINS = [
    o.strip() for o in os.environ.get("CSRF_TRUSTED_ORIGINS", "").split(",") if o.strip()
]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_filters",
    "provenance",
    "registry",
    "compliance",
]

MIDDLEWARE = [
    "config.middleware.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "compliance.context_processors.inbox",
                "compliance.oidc.single_sign_on",  # the SSO button, when configured
            ],
        },
    },
]

# --- database -------------------------------------------------------------------------------

DATABASE_URL = _url(
    "DATABASE_URL",
    f"sqlite:///{VAR_DIR / 'db.sqlite3'}",
    {"sqlite", "postgres", "postgresql", "pgsql"},
)
try:
    _db = env.db_url_config(DATABASE_URL)
except Exception as exc:  # django-environ raises several types for a bad URL
    raise ImproperlyConfigured(f"DATABASE_URL: cannot parse it ({exc})") from exc
if _db["ENGINE"] == "django.db.backends.sqlite3":
    Path(_db["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    _db["OPTIONS"] = {
        # WAL lets the web process, the worker and beat read while one of them writes;
        # IMMEDIATE transactions avoid the upgrade deadlock SQLite has with deferred ones.
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
    }
    # A file, not :memory:, so a real Celery worker process can share the test database.
    _db["TEST"] = {"NAME": str(VAR_DIR / "test-db.sqlite3")}
else:
    _db["CONN_MAX_AGE"] = _int("DATABASE_CONN_MAX_AGE", 60)
    # A reused connection is checked when a request first uses it, so that one closed while
    # idle (database restart, failover, PgBouncer's idle timeout) is replaced instead of
    # failing the request (docs/deployment.md). config.postgres checks the socket first and
    # sends Django's ``SELECT 1`` only when the server may have closed it: no round trip.
    _db["CONN_HEALTH_CHECKS"] = True
    if _db["ENGINE"] == "django.db.backends.postgresql":
        _db["ENGINE"] = "config.postgres"
    if _bool("DATABASE_PREPARED_STATEMENTS", default=True):
        # Parameters bound by the server, and a statement run a fifth time on a connection
        # prepared, so that PostgreSQL plans it once: planning a lineage walk took longer
        # than running it. PgBouncer in transaction mode needs max_prepared_statements set
        # (1.21+), or DATABASE_PREPARED_STATEMENTS=false (docs/deployment.md).
        _db["OPTIONS"] = {
            **_db.get("OPTIONS", {}),
            "server_side_binding": True,
            "prepare_threshold": 5,
        }
DATABASES = {"default": _db}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- auth -----------------------------------------------------------------------------------

# Argon2id first (memory-hard; OWASP's first choice); PBKDF2 stays so that existing hashes
# still verify, and each is re-hashed with Argon2id at its owner's next successful sign-in.
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
    "django.contrib.auth.hashers.ScryptPasswordHasher",
]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "registry:model-list"
LOGOUT_REDIRECT_URL = "login"

# --- single sign-on: OpenID Connect, on only when configured (docs/deployment.md) -------------

_OIDC_SIGN_ALGOS = {"RS256", "RS384", "RS512", "ES256", "ES384", "ES512"}
_DOMAIN = re.compile(r"[a-z0-9-]+(\.[a-z0-9-]+)+")


def _check_oidc_url(name: str, value: str) -> None:
    """An OpenID provider address: https, or http too in embedded mode (a local test provider)."""
    parts = urlsplit(value)
    schemes = {"https", "http"} if DEBUG else {"https"}
    if parts.scheme not in schemes or not parts.netloc:
        raise ImproperlyConfigured(f"{name}: expected an https:// URL, got {value!r}")


def _domains(name: str) -> list[str]:
    raw = os.environ.get(name, "")
    domains = [d.strip().lower().removeprefix("@") for d in raw.split(",") if d.strip()]
    for domain in domains:
        if not _DOMAIN.fullmatch(domain):
            raise ImproperlyConfigured(f"{name}: {domain!r} is not a domain name")
    return domains


# Nothing is fetched at start-up (no discovery): the provider's endpoints are given one by one.
# Setting any of these turns single sign-on on, and then every one of them is required.
_OIDC_REQUIRED = {
    "OIDC_ISSUER": os.environ.get("OIDC_ISSUER", ""),
    "OIDC_CLIENT_ID": os.environ.get("OIDC_CLIENT_ID", ""),
    "OIDC_CLIENT_SECRET": _read_secret("OIDC_CLIENT_SECRET") or "",
    "OIDC_AUTHORIZATION_ENDPOINT": os.environ.get("OIDC_AUTHORIZATION_ENDPOINT", ""),
    "OIDC_TOKEN_ENDPOINT": os.environ.get("OIDC_TOKEN_ENDPOINT", ""),
    "OIDC_USERINFO_ENDPOINT": os.environ.get("OIDC_USERINFO_ENDPOINT", ""),
    "OIDC_JWKS_ENDPOINT": os.environ.get("OIDC_JWKS_ENDPOINT", ""),
}
OIDC_ENABLED = any(_OIDC_REQUIRED.values())
if OIDC_ENABLED:
    for _name, _value in _OIDC_REQUIRED.items():
        if not _value:
            raise ImproperlyConfigured(
                f"{_name} is required for single sign-on (another OIDC_ variable is set)"
            )
        if _name == "OIDC_ISSUER" or _name.endswith("_ENDPOINT"):
            _check_oidc_url(_name, _value)

# Read by compliance/oidc.py and by mozilla-django-oidc under its own names.
OIDC_ISSUER = _OIDC_REQUIRED["OIDC_ISSUER"]
OIDC_PROVIDER_NAME = os.environ.get("OIDC_PROVIDER_NAME") or "SSO"
OIDC_USERNAME_CLAIM = os.environ.get("OIDC_USERNAME_CLAIM") or "preferred_username"
OIDC_ALLOWED_DOMAINS = _domains("OIDC_ALLOWED_DOMAINS")
OIDC_CREATE_USER = _bool("OIDC_CREATE_USERS", default=True)
OIDC_RP_CLIENT_ID = _OIDC_REQUIRED["OIDC_CLIENT_ID"]
OIDC_RP_CLIENT_SECRET = _OIDC_REQUIRED["OIDC_CLIENT_SECRET"]
OIDC_OP_AUTHORIZATION_ENDPOINT = _OIDC_REQUIRED["OIDC_AUTHORIZATION_ENDPOINT"]
OIDC_OP_TOKEN_ENDPOINT = _OIDC_REQUIRED["OIDC_TOKEN_ENDPOINT"]
OIDC_OP_USER_ENDPOINT = _OIDC_REQUIRED["OIDC_USERINFO_ENDPOINT"]
OIDC_OP_JWKS_ENDPOINT = _OIDC_REQUIRED["OIDC_JWKS_ENDPOINT"]
OIDC_RP_SIGN_ALGO = os.environ.get("OIDC_SIGN_ALGO") or "RS256"
if OIDC_RP_SIGN_ALGO not in _OIDC_SIGN_ALGOS:
    raise ImproperlyConfigured(
        f"OIDC_SIGN_ALGO: expected one of {', '.join(sorted(_OIDC_SIGN_ALGOS))}, "
        f"got {OIDC_RP_SIGN_ALGO!r}"
    )
_client_auth = os.environ.get("OIDC_TOKEN_AUTH_METHOD") or "client_secret_basic"
if _client_auth not in {"client_secret_basic", "client_secret_post"}:
    raise ImproperlyConfigured(
        "OIDC_TOKEN_AUTH_METHOD: expected client_secret_basic or client_secret_post"
    )
OIDC_TOKEN_USE_BASIC_AUTH = _client_auth == "client_secret_basic"
OIDC_RP_SCOPES = "openid email profile"
OIDC_USE_PKCE = True
OIDC_USE_NONCE = True
OIDC_TIMEOUT = _int("OIDC_TIMEOUT", 10, minimum=1)
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    *(["compliance.oidc.SingleSignOnBackend"] if OIDC_ENABLED else []),
]

# --- i18n, static ---------------------------------------------------------------------------

LANGUAGE_CODE = "en-gb"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT") or VAR_DIR / "static")
WHITENOISE_USE_FINDERS = DEBUG  # serve straight from static/ without collectstatic in embedded mode
if DEBUG:
    STATIC_ROOT.mkdir(parents=True, exist_ok=True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # Evidence bundles (zips). Several workers on several machines need one shared location:
    # a mounted volume here, or any Django storage backend (e.g. S3) configured in its place.
    "evidence": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {
            "location": str(Path(os.environ.get("EVIDENCE_DIR") or VAR_DIR / "evidence").resolve()),
            "file_permissions_mode": 0o640,
            "directory_permissions_mode": 0o750,
        },
    },
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

# --- security headers (production sits behind a TLS proxy) -----------------------------------

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = _bool("SECURE_SSL_REDIRECT", default=not DEBUG)
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
SESSION_COOKIE_HTTPONLY = True
SECURE_HSTS_SECONDS = _int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31_536_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = _bool("SECURE_HSTS_PRELOAD", default=False)
# Preloading commits the domain and all its subdomains to HTTPS in browsers for good: that is
# the operator's decision (SECURE_HSTS_PRELOAD), so its absence is not a deploy warning here.
SILENCED_SYSTEM_CHECKS = [] if SECURE_HSTS_PRELOAD else ["security.W021"]
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

# --- REST framework, API tokens, throttling -------------------------------------------------

_THROTTLE_PERIODS = {"s", "sec", "second", "m", "min", "minute", "h", "hour", "d", "day"}


def _throttle_rate(name: str, default: str | None) -> str | None:
    """A DRF rate such as ``60/minute``; ``off`` (or ``none``) turns the throttle off."""
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip().lower()
    if value in {"off", "none"}:
        return None
    count, _, period = value.partition("/")
    if not count.isdigit() or int(count) < 1 or period not in _THROTTLE_PERIODS:
        raise ImproperlyConfigured(
            f"{name}: expected a rate like 60/minute (per second, minute, hour or day) "
            f"or off, got {raw!r}"
        )
    return value


# Embedded mode (make run, make test) does not throttle unless asked to; production does.
API_THROTTLE_ANON_RATE = _throttle_rate("API_THROTTLE_ANON_RATE", None if DEBUG else "60/minute")
API_THROTTLE_TOKEN_RATE = _throttle_rate(
    "API_THROTTLE_TOKEN_RATE", None if DEBUG else "1200/minute"
)
# How many proxies append to X-Forwarded-For in front of the service: the anonymous throttle
# trusts the address the outermost of them saw, and nothing a client wrote itself.
API_THROTTLE_NUM_PROXIES = _int("API_THROTTLE_NUM_PROXIES", 0 if DEBUG else 1)
API_TOKEN_MAX_DAYS = _int("API_TOKEN_MAX_DAYS", 90, minimum=1)

# Where the throttles count (compliance/throttles.py): this process's memory by default, so each
# gunicorn worker counts on its own (``check --deploy`` warns of it in production unless
# CACHE_URL says so); a Redis URL makes every worker and machine share one count.
CACHE_URL = _read_secret("CACHE_URL") or ""
if CACHE_URL:
    _scheme_checked("CACHE_URL", CACHE_URL, {"locmem", "redis", "rediss"})
CACHES: dict[str, dict[str, Any]]
if not CACHE_URL.startswith(("redis:", "rediss:")):
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
else:
    CACHES = {
        "default": {
            "BACKEND": "config.cache.RedisCache",
            "LOCATION": CACHE_URL,
            "KEY_PREFIX": "secmlops",
            # A cache that stops answering delays a request by this much, at most, per call.
            "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
        }
    }

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "compliance.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": [
        "rest_framework.permissions.IsAuthenticated",
        "compliance.permissions.HasTokenScope",
    ],
    "DEFAULT_PARSER_CLASSES": [
        "config.parsers.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_THROTTLE_CLASSES": [
        "compliance.throttles.AnonymousRateThrottle",
        "compliance.throttles.TokenRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {"anon": API_THROTTLE_ANON_RATE, "token": API_THROTTLE_TOKEN_RATE},
    "NUM_PROXIES": API_THROTTLE_NUM_PROXIES,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "config.errors.api_exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "SecMLOps Registry API",
    "VERSION": "1",
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "config.schema.error_responses",  # the error responses every operation can give
    ],
}

# --- MLflow ---------------------------------------------------------------------------------

MLFLOW_TRACKING_URI = _url(
    "MLFLOW_TRACKING_URI",
    f"sqlite:///{VAR_DIR / 'mlflow' / 'mlflow.db'}",
    {"http", "https", "sqlite", "postgresql", "file", "databricks"},
)
# Where runs created against the embedded store keep their artifacts.
MLFLOW_DEFAULT_ARTIFACT_ROOT = os.environ.get("MLFLOW_DEFAULT_ARTIFACT_ROOT") or str(
    VAR_DIR / "mlflow" / "artifacts"
)
MLFLOW_REQUEST_TIMEOUT = _int("MLFLOW_REQUEST_TIMEOUT", 10, minimum=1)
MLFLOW_SYNC_INTERVAL = _int("MLFLOW_SYNC_INTERVAL", 60, minimum=5)
MLFLOW_WEBHOOK_SECRET = _read_secret("MLFLOW_WEBHOOK_SECRET") or ""
MLFLOW_WEBHOOK_TOLERANCE = _int("MLFLOW_WEBHOOK_TOLERANCE", 300, minimum=1)

# --- governance log -----------------------------------------------------------------------

LOG_ORIGIN = os.environ.get("LOG_ORIGIN") or "secmlops-registry.local/governance-log"
LOG_SIGNING_KEY_FILE = os.environ.get("LOG_SIGNING_KEY_FILE", "")
LOG_CHECKPOINT_EVERY_ENTRIES = _int("LOG_CHECKPOINT_EVERY_ENTRIES", 1000, minimum=1)
LOG_CHECKPOINT_INTERVAL = _int("LOG_CHECKPOINT_INTERVAL", 300, minimum=5)

# --- attestation signing keys -------------------------------------------------------------

ATTESTATION_SIGNING_KEY_FILE = os.environ.get("ATTESTATION_SIGNING_KEY_FILE", "")
ATTESTATION_KEY_SCHEME = os.environ.get("ATTESTATION_KEY_SCHEME") or "ecdsa-sha2-nistp256"
if ATTESTATION_KEY_SCHEME not in {"ecdsa-sha2-nistp256", "ed25519"}:
    raise ImproperlyConfigured("ATTESTATION_KEY_SCHEME: use ecdsa-sha2-nistp256 or ed25519")

ATTESTATION_MAX_BYTES = _int("ATTESTATION_MAX_BYTES", 10 * 1024 * 1024, minimum=1024)
# Envelopes in one bundle upload (JSON Lines): a bundle is stored in one transaction.
ATTESTATION_BUNDLE_MAX_LINES = _int("ATTESTATION_BUNDLE_MAX_LINES", 1000, minimum=1)
# Django must let an upload up to the limit be read, so the API refuses larger ones itself
# (a JSON payload_too_large, logged) rather than Django answering with an HTML page.
DATA_UPLOAD_MAX_MEMORY_SIZE = max(2_621_440, ATTESTATION_MAX_BYTES + 65_536)
SIGSTORE_TRUSTED_ROOT = os.environ.get("SIGSTORE_TRUSTED_ROOT", "")

# --- Celery ---------------------------------------------------------------------------------

CELERY_BROKER_URL = _url(
    "CELERY_BROKER_URL",
    f"sqla+sqlite:///{VAR_DIR / 'celery-broker.sqlite3'}",
    {"redis", "rediss", "amqp", "amqps", "pyamqp", "sqla+sqlite", "sqla+postgresql"},
)
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE = {
    "rescan-outdated": {
        "task": "registry.tasks.model_versions_rescan_outdated",
        "schedule": 3600.0,
        "options": {"expires": 3600.0},
    },
    "promotion-expiry": {
        "task": "compliance.tasks.promotion_requests_expire",
        "schedule": 300.0,
        "options": {"expires": 300.0},
    },
    "promotion-resume": {
        "task": "compliance.tasks.promotion_requests_resume",
        "schedule": 300.0,
        "options": {"expires": 300.0},
    },
    "mlflow-reconcile": {
        "task": "registry.tasks.mlflow_reconcile",
        "schedule": float(MLFLOW_SYNC_INTERVAL),
        "options": {"expires": float(MLFLOW_SYNC_INTERVAL)},
    },
    "log-checkpoint": {
        "task": "provenance.tasks.log_checkpoint",
        "schedule": float(LOG_CHECKPOINT_INTERVAL),
        "options": {"expires": float(LOG_CHECKPOINT_INTERVAL)},
    },
}
HEALTH_CHECK_TIMEOUT = _int("HEALTH_CHECK_TIMEOUT", 3, minimum=1)

# --- logging: one line per event, with the request id; secrets never logged ---------------------

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "config.middleware.RequestIdLogFilter"}},
    "formatters": {
        "line": {
            "format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s",
        }
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "line",
            "filters": ["request_id"],
        }
    },
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "alembic": {"level": "WARNING"},
    },
}

EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "secmlops-registry@localhost")
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = _int("EMAIL_PORT", 25, minimum=1)
EMAIL_USE_TLS = _bool("EMAIL_USE_TLS", False)
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = _read_secret("EMAIL_HOST_PASSWORD") or ""
# Links in notifications point here (the address users reach the UI at).
REGISTRY_BASE_URL = os.environ.get("REGISTRY_BASE_URL", "http://127.0.0.1:8000").rstrip("/")
# How long a promotion may sit in ``executing`` (MLflow down) before beat re-queues it.
PROMOTION_RESUME_AFTER = _int("PROMOTION_RESUME_AFTER", 600, minimum=60)

# --- Evidence bundles (docs/evidence.md) ------------------------------------------------------

# An RFC 3161 timestamp authority to countersign each bundle's manifest (none by default).
EVIDENCE_TSA_URL = os.environ.get("EVIDENCE_TSA_URL", "")
EVIDENCE_TSA_TIMEOUT = _int("EVIDENCE_TSA_TIMEOUT", 20, minimum=1)
# Longest an auditor's access to bundles may be granted for.
AUDITOR_GRANT_MAX_DAYS = _int("AUDITOR_GRANT_MAX_DAYS", 90, minimum=1)

# --- Model scanning (docs/configuration.md) ---------------------------------------------------

SCAN_POLICY = os.environ.get("SCAN_POLICY", "strict")
if SCAN_POLICY not in {"strict", "lenient"}:
    raise ImproperlyConfigured("SCAN_POLICY: must be strict or lenient")
# Extra pickle imports to accept (e.g. "sklearn.*,xgboost.core.Booster"); denylisted ones stay.
SCAN_EXTRA_ALLOWED_IMPORTS = [
    item.strip()
    for item in os.environ.get("SCAN_EXTRA_ALLOWED_IMPORTS", "").split(",")
    if item.strip()
]
SCAN_MAX_FILE_SIZE = _int("SCAN_MAX_FILE_SIZE", 64 * 1024**3, minimum=1)
SCAN_SCANNER_TIMEOUT = _int("SCAN_SCANNER_TIMEOUT", 300, minimum=1)
SCAN_TASK_TIME_LIMIT = _int("SCAN_TASK_TIME_LIMIT", 3600, minimum=60)
