"""Single sign-on with OpenID Connect, against a fake provider this file starts on 127.0.0.1.

The provider is real HTTP (authorize, token, userinfo, jwks) with its own RSA key, so the
library's token exchange, signature and nonce checks and our audience, issuer and claim checks
all run as they would against Keycloak or Entra ID.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import jwt
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import rsa
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from compliance.models import RoleAssignment
from provenance.models import LogEntry

CLIENT_ID = "secmlops-registry"
CLIENT_SECRET = "fake-provider-client-secret"
KID = "fake-key-1"
PASSWORD = "correct horse battery staple"


def _rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@dataclass
class FakeProvider:
    """An OpenID provider with one person signed in at it; tests change who, and how it lies."""

    issuer: str = ""
    key: rsa.RSAPrivateKey = field(default_factory=_rsa_key)
    person: dict[str, Any] = field(default_factory=dict)
    id_token_changes: dict[str, Any] = field(default_factory=dict)
    userinfo_changes: dict[str, Any] = field(default_factory=dict)
    signing_key: rsa.RSAPrivateKey | None = None  # another key: a forged signature
    authorizations: dict[str, dict[str, str]] = field(default_factory=dict)
    access_tokens: dict[str, dict[str, Any]] = field(default_factory=dict)
    token_requests: list[dict[str, str]] = field(default_factory=list)

    def endpoint(self, name: str) -> str:
        return f"{self.issuer}/{name}"

    def id_token(self, nonce: str | None) -> str:
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "aud": CLIENT_ID,
            "sub": self.person["sub"],
            "iat": now,
            "exp": now + 300,
            "nonce": nonce,
            **self.id_token_changes,
        }
        return jwt.encode(
            claims, self.signing_key or self.key, algorithm="RS256", headers={"kid": KID}
        )

    def jwks(self) -> dict[str, Any]:
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
        return {"keys": [{**jwk, "kid": KID, "alg": "RS256", "use": "sig"}]}

    def authorize(self, params: dict[str, str]) -> str:
        """Where the browser is sent back to: the callback, with a one-time code."""
        assert params["client_id"] == CLIENT_ID
        assert params["response_type"] == "code"
        code = secrets.token_urlsafe(16)
        self.authorizations[code] = params
        query = urlencode({"code": code, "state": params["state"]})
        return f"{params['redirect_uri']}?{query}"

    def token(self, form: dict[str, str], authorization: str) -> tuple[int, dict[str, Any]]:
        self.token_requests.append({**form, "authorization": authorization})
        expected = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        if authorization != f"Basic {expected}":
            return 401, {"error": "invalid_client"}
        asked = self.authorizations.pop(form.get("code", ""), None)
        if asked is None or form.get("redirect_uri") != asked["redirect_uri"]:
            return 400, {"error": "invalid_grant"}
        verifier = form.get("code_verifier", "").encode()
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier).digest()).rstrip(b"=")
        if challenge.decode() != asked.get("code_challenge"):
            return 400, {"error": "invalid_grant", "error_description": "PKCE"}
        access_token = secrets.token_urlsafe(16)
        self.access_tokens[access_token] = {**self.person, **self.userinfo_changes}
        id_token = self.id_token(asked.get("nonce"))
        return 200, {"access_token": access_token, "token_type": "Bearer", "id_token": id_token}


def _handler(provider: FakeProvider) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

        def _json(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            if url.path == "/authorize":
                self.send_response(302)
                self.send_header("Location", provider.authorize(dict(parse_qsl(url.query))))
                self.send_header("Content-Length", "0")
                self.end_headers()
            elif url.path == "/jwks":
                self._json(200, provider.jwks())
            elif url.path == "/userinfo":
                token = self.headers.get("Authorization", "").removeprefix("Bearer ")
                claims = provider.access_tokens.get(token)
                self._json(200, claims) if claims else self._json(401, {"error": "invalid_token"})
            else:
                self._json(404, {"error": "not_found"})

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0"))).decode()
            status, answer = provider.token(
                dict(parse_qsl(body)), self.headers.get("Authorization", "")
            )
            self._json(status, answer)

    return Handler


@pytest.fixture
def provider() -> Iterator[FakeProvider]:
    fake = FakeProvider(
        person={
            "sub": "2b9f0c7e-subject-of-ada",
            "preferred_username": "ada",
            "email": "ada@example.org",
            "email_verified": True,
            "name": "Ada Lovelace",
        }
    )
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    fake.issuer = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield fake
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.fixture
def sso(settings: Any, provider: FakeProvider) -> FakeProvider:
    """Single sign-on configured against the fake provider, as the OIDC_* variables would."""
    settings.OIDC_ENABLED = True
    settings.OIDC_PROVIDER_NAME = "Example ID"
    settings.OIDC_ISSUER = provider.issuer
    settings.OIDC_RP_CLIENT_ID = CLIENT_ID
    settings.OIDC_RP_CLIENT_SECRET = CLIENT_SECRET
    settings.OIDC_OP_AUTHORIZATION_ENDPOINT = provider.endpoint("authorize")
    settings.OIDC_OP_TOKEN_ENDPOINT = provider.endpoint("token")
    settings.OIDC_OP_USER_ENDPOINT = provider.endpoint("userinfo")
    settings.OIDC_OP_JWKS_ENDPOINT = provider.endpoint("jwks")
    settings.AUTHENTICATION_BACKENDS = [
        "django.contrib.auth.backends.ModelBackend",
        "compliance.oidc.SingleSignOnBackend",
    ]
    return provider


def sign_in_with_sso(client: Client, *, next_url: str = "") -> Any:
    """Click the button, let the provider send the browser back, return the callback's answer."""
    start = client.get(reverse("oidc_authentication_init"), {"next": next_url} if next_url else {})
    assert start.status_code == 302
    at_provider = requests.get(start["Location"], allow_redirects=False, timeout=10)
    assert at_provider.status_code == 302, at_provider.text
    return client.get(at_provider.headers["Location"])


def signed_in_user(client: Client) -> User | None:
    user_id = client.session.get("_auth_user_id")
    return User.objects.get(pk=user_id) if user_id else None


def assert_refused(
    client: Client, response: Any, caplog: pytest.LogCaptureFixture, reason: str
) -> None:
    """Back on the login page with a message, signed out, and the reason in the log."""
    assert reason in caplog.text
    assert response.status_code == 302
    assert response["Location"] == reverse("login")
    assert signed_in_user(client) is None
    page = client.get(response["Location"])
    assert "Signing in with Example ID did not succeed" in page.content.decode()


def sso_sign_ups() -> list[LogEntry]:
    return list(LogEntry.objects.filter(event_type="user.created_via_sso"))


# --- configured or not ---------------------------------------------------------------------


@pytest.mark.django_db
def test_without_oidc_settings_there_is_no_button_and_no_sso_route(client: Client) -> None:
    page = client.get(reverse("login"))

    assert page.status_code == 200
    assert "Sign in with" not in page.content.decode()
    assert client.get("/oidc/callback/?code=x&state=y").status_code == 404
    assert client.get("/oidc/authenticate/").status_code == 404


@pytest.mark.django_db
def test_when_configured_the_login_page_offers_the_provider_beside_the_password_form(
    client: Client, sso: FakeProvider
) -> None:
    page = client.get(reverse("login"), {"next": "/governance/roles/"}).content.decode()

    assert "Sign in with Example ID" in page
    assert 'action="/oidc/authenticate/"' in page
    assert 'name="password"' in page
    assert 'name="next" value="/governance/roles/"' in page


@pytest.mark.django_db
def test_the_authorization_request_carries_state_nonce_and_a_pkce_challenge(
    client: Client, sso: FakeProvider
) -> None:
    start = client.get(reverse("oidc_authentication_init"))

    location = urlsplit(start["Location"])
    params = dict(parse_qsl(location.query))
    assert f"{location.scheme}://{location.netloc}{location.path}" == sso.endpoint("authorize")
    assert params["scope"] == "openid email profile"
    assert params["code_challenge_method"] == "S256"
    assert len(params["state"]) >= 32
    assert len(params["nonce"]) >= 32
    assert params["redirect_uri"] == "http://testserver/oidc/callback/"


# --- signing in ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_first_sign_in_creates_an_account_without_roles_or_rights_and_logs_it(
    client: Client, sso: FakeProvider
) -> None:
    response = sign_in_with_sso(client, next_url="/governance/roles/")

    assert response.status_code == 302
    assert response["Location"] == "/governance/roles/"
    user = signed_in_user(client)
    assert user is not None
    assert user.username == "ada"
    assert user.email == "ada@example.org"
    assert not user.is_staff
    assert not user.is_superuser
    assert not user.has_usable_password()
    assert not RoleAssignment.objects.filter(user=user).exists()
    [entry] = sso_sign_ups()
    assert (entry.actor_id, entry.object_type, entry.object_id) == (user.pk, "user", str(user.pk))
    logged = json.loads(bytes(entry.entry))
    assert logged["after"] == {
        "username": "ada",
        "issuer": sso.issuer,
        "subject": "2b9f0c7e-subject-of-ada",
        "roles": [],
    }
    assert "ada@example.org" not in bytes(entry.entry).decode()


@pytest.mark.django_db
def test_a_next_address_on_another_site_is_ignored(client: Client, sso: FakeProvider) -> None:
    response = sign_in_with_sso(client, next_url="https://evil.example/phish")

    assert response.status_code == 302
    assert response["Location"] == reverse("registry:model-list")
    assert signed_in_user(client) is not None


@pytest.mark.django_db
def test_the_token_request_proves_pkce_and_authenticates_the_client(
    client: Client, sso: FakeProvider
) -> None:
    sign_in_with_sso(client)

    [token_request] = sso.token_requests
    assert token_request["grant_type"] == "authorization_code"
    assert token_request["code_verifier"]
    assert token_request["authorization"].startswith("Basic ")
    assert "client_secret" not in token_request


@pytest.mark.django_db
def test_a_second_sign_in_reuses_the_account(client: Client, sso: FakeProvider) -> None:
    sign_in_with_sso(client)
    first = signed_in_user(client)
    client.post(reverse("logout"))
    assert signed_in_user(client) is None

    sign_in_with_sso(client)

    assert signed_in_user(client) == first
    assert User.objects.filter(username="ada").count() == 1
    assert len(sso_sign_ups()) == 1


@pytest.mark.django_db
def test_an_existing_local_account_with_that_username_is_signed_into(
    client: Client, sso: FakeProvider
) -> None:
    local = User.objects.create_user("ada", password=PASSWORD)

    sign_in_with_sso(client)

    assert signed_in_user(client) == local
    assert sso_sign_ups() == []


@pytest.mark.django_db
def test_the_username_comes_from_the_configured_claim_else_from_sub(
    client: Client, sso: FakeProvider, settings: Any
) -> None:
    settings.OIDC_USERNAME_CLAIM = "employee_id"
    sso.person["employee_id"] = "E1042"
    sign_in_with_sso(client)
    assert signed_in_user(client) == User.objects.get(username="E1042")

    client.post(reverse("logout"))
    del sso.person["employee_id"]
    sign_in_with_sso(client)
    assert signed_in_user(client) == User.objects.get(username="2b9f0c7e-subject-of-ada")


@pytest.mark.django_db
def test_signing_out_ends_the_sso_session(client: Client, sso: FakeProvider) -> None:
    sign_in_with_sso(client)

    response = client.post(reverse("logout"))

    assert response.status_code == 302
    assert signed_in_user(client) is None
    assert client.get("/governance/roles/").status_code == 302


# --- refusals ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        pytest.param({"aud": "another-client"}, "Audience doesn't match", id="wrong-audience"),
        pytest.param({"iss": "https://impostor.example"}, "Invalid issuer", id="wrong-issuer"),
        pytest.param({"nonce": "from-another-flow"}, "Nonce verification failed", id="nonce"),
        pytest.param({"exp": int(time.time()) - 3600}, "Signature has expired", id="expired"),
        pytest.param({"aud": [CLIENT_ID, "x"], "azp": "x"}, "another azp", id="wrong-azp"),
    ],
)
@pytest.mark.django_db
def test_an_id_token_with_a_wrong_claim_is_refused(
    client: Client,
    sso: FakeProvider,
    caplog: pytest.LogCaptureFixture,
    change: dict[str, Any],
    reason: str,
) -> None:
    sso.id_token_changes = change

    response = sign_in_with_sso(client)

    assert_refused(client, response, caplog, reason)
    assert not User.objects.filter(username="ada").exists()
    assert sso_sign_ups() == []


@pytest.mark.django_db
def test_an_id_token_signed_by_another_key_is_refused(
    client: Client, sso: FakeProvider, caplog: pytest.LogCaptureFixture
) -> None:
    sso.signing_key = _rsa_key()

    assert_refused(client, sign_in_with_sso(client), caplog, "Signature verification failed")
    assert not User.objects.filter(username="ada").exists()


@pytest.mark.django_db
def test_userinfo_about_another_subject_is_refused(
    client: Client, sso: FakeProvider, caplog: pytest.LogCaptureFixture
) -> None:
    sso.userinfo_changes = {"sub": "someone-else", "preferred_username": "root"}

    assert_refused(client, sign_in_with_sso(client), caplog, "describes another subject")
    assert not User.objects.filter(username__in=["ada", "root"]).exists()


@pytest.mark.django_db
def test_a_callback_is_good_once(client: Client, sso: FakeProvider) -> None:
    start = client.get(reverse("oidc_authentication_init"))
    callback = requests.get(start["Location"], allow_redirects=False, timeout=10)
    client.get(callback.headers["Location"])
    client.post(reverse("logout"))

    replayed = client.get(callback.headers["Location"])

    assert replayed.status_code == 302
    assert replayed["Location"] == reverse("login")
    assert signed_in_user(client) is None
    assert len(sso.token_requests) == 1


@pytest.mark.django_db
def test_a_callback_with_a_state_this_browser_never_sent_is_refused(
    client: Client, sso: FakeProvider
) -> None:
    client.get(reverse("oidc_authentication_init"))

    response = client.get("/oidc/callback/", {"code": "stolen", "state": "forged"})

    assert response.status_code == 400
    assert signed_in_user(client) is None
    assert sso.token_requests == []


@pytest.mark.django_db
def test_an_email_domain_outside_the_allowed_list_is_refused(
    client: Client, sso: FakeProvider, settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    settings.OIDC_ALLOWED_DOMAINS = ["example.com", "sub.example.org"]

    reason = "example.org is not in OIDC_ALLOWED_DOMAINS"
    assert_refused(client, sign_in_with_sso(client), caplog, reason)
    assert not User.objects.filter(username="ada").exists()


@pytest.mark.django_db
def test_an_allowed_domain_needs_a_verified_address(
    client: Client, sso: FakeProvider, settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    settings.OIDC_ALLOWED_DOMAINS = ["example.org"]
    sso.person["email_verified"] = False
    assert_refused(client, sign_in_with_sso(client), caplog, "no verified e-mail address")

    sso.person["email_verified"] = True
    sso.person["email"] = "Ada@EXAMPLE.org"
    sign_in_with_sso(client)
    user = signed_in_user(client)
    assert user is not None
    assert user.email == "Ada@example.org"


@pytest.mark.django_db
def test_an_unverified_address_is_not_kept(client: Client, sso: FakeProvider) -> None:
    sso.person["email_verified"] = False

    sign_in_with_sso(client)

    user = signed_in_user(client)
    assert user is not None
    assert user.email == ""


@pytest.mark.django_db
def test_a_deactivated_local_account_is_refused(
    client: Client, sso: FakeProvider, caplog: pytest.LogCaptureFixture
) -> None:
    User.objects.create_user("ada", is_active=False)

    assert_refused(client, sign_in_with_sso(client), caplog, "ada is deactivated")


@pytest.mark.django_db
def test_staff_accounts_are_not_opened_by_sso(
    client: Client, sso: FakeProvider, caplog: pytest.LogCaptureFixture
) -> None:
    User.objects.create_superuser("ada", password=PASSWORD)

    assert_refused(client, sign_in_with_sso(client), caplog, "ada is staff")


@pytest.mark.django_db
def test_deactivating_an_account_ends_its_sso_session(client: Client, sso: FakeProvider) -> None:
    sign_in_with_sso(client)
    User.objects.filter(username="ada").update(is_active=False)

    assert client.get("/governance/roles/").status_code == 302


@pytest.mark.django_db
def test_without_account_creation_only_existing_accounts_sign_in(
    client: Client, sso: FakeProvider, settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    settings.OIDC_CREATE_USER = False
    caplog.set_level("DEBUG", logger="mozilla_django_oidc")
    assert_refused(client, sign_in_with_sso(client), caplog, "OIDC_CREATE_USER is False")
    assert not User.objects.filter(username="ada").exists()

    User.objects.create_user("ada")
    sign_in_with_sso(client)
    assert signed_in_user(client) == User.objects.get(username="ada")


@pytest.mark.django_db
def test_the_password_form_never_starts_a_token_exchange(client: Client, sso: FakeProvider) -> None:
    User.objects.create_user("bob", password=PASSWORD)

    refused = client.post("/login/?code=leaked&state=x", {"username": "x", "password": "y"})
    response = client.post(reverse("login"), {"username": "bob", "password": PASSWORD})

    assert refused.status_code == 200
    assert sso.token_requests == []
    assert response.status_code == 302
    assert signed_in_user(client) == User.objects.get(username="bob")


# --- settings, read from the environment in a fresh process --------------------------------

ENDPOINTS = {
    "OIDC_ISSUER": "https://id.example.org",
    "OIDC_CLIENT_ID": CLIENT_ID,
    "OIDC_CLIENT_SECRET": CLIENT_SECRET,
    "OIDC_AUTHORIZATION_ENDPOINT": "https://id.example.org/authorize",
    "OIDC_TOKEN_ENDPOINT": "https://id.example.org/token",
    "OIDC_USERINFO_ENDPOINT": "https://id.example.org/userinfo",
    "OIDC_JWKS_ENDPOINT": "https://id.example.org/jwks",
}
SHOW = (
    "import json, django; django.setup(); from django.conf import settings as s; "
    "print(json.dumps([s.OIDC_ENABLED, s.AUTHENTICATION_BACKENDS, s.OIDC_RP_CLIENT_SECRET, "
    "s.OIDC_ALLOWED_DOMAINS]))"
)


def load_settings(env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("OIDC_", "VAR_DIR"))}
    return subprocess.run(
        [sys.executable, "-c", SHOW],
        env={**clean, "DJANGO_SETTINGS_MODULE": "config.settings", "VAR_DIR": str(tmp_path), **env},
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def test_without_oidc_variables_the_sso_backend_is_not_loaded(tmp_path: Path) -> None:
    result = load_settings({"DEBUG": "true"}, tmp_path)

    assert result.returncode == 0, result.stderr
    enabled, backends, _, _ = json.loads(result.stdout)
    assert enabled is False
    assert backends == ["django.contrib.auth.backends.ModelBackend"]


def test_with_oidc_variables_the_sso_backend_is_added(tmp_path: Path) -> None:
    secret_file = tmp_path / "oidc-secret"
    secret_file.write_text(CLIENT_SECRET + "\n")
    env = {k: v for k, v in ENDPOINTS.items() if k != "OIDC_CLIENT_SECRET"}

    result = load_settings(
        {
            "DEBUG": "true",
            **env,
            "OIDC_CLIENT_SECRET_FILE": str(secret_file),
            "OIDC_ALLOWED_DOMAINS": "Example.org, @example.com",
        },
        tmp_path,
    )

    assert result.returncode == 0, result.stderr
    enabled, backends, secret, domains = json.loads(result.stdout)
    assert enabled is True
    assert backends[-1] == "compliance.oidc.SingleSignOnBackend"
    assert secret == CLIENT_SECRET
    assert domains == ["example.org", "example.com"]


@pytest.mark.parametrize(
    "missing",
    ["OIDC_CLIENT_SECRET", "OIDC_CLIENT_ID", "OIDC_ISSUER", "OIDC_JWKS_ENDPOINT"],
)
def test_an_incomplete_oidc_configuration_stops_start_up_naming_what_is_missing(
    missing: str, tmp_path: Path
) -> None:
    env = {k: v for k, v in ENDPOINTS.items() if k != missing}

    result = load_settings({"DEBUG": "true", **env}, tmp_path)

    assert result.returncode != 0
    assert f"ImproperlyConfigured: {missing} is required for single sign-on" in result.stderr


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("OIDC_TOKEN_ENDPOINT", "http://id.example.org/token"),
        ("OIDC_ISSUER", "id.example.org"),
        ("OIDC_SIGN_ALGO", "HS256"),
        ("OIDC_ALLOWED_DOMAINS", "example.org,not a domain"),
        ("OIDC_TOKEN_AUTH_METHOD", "private_key_jwt"),
        ("OIDC_TIMEOUT", "0"),
    ],
)
def test_a_malformed_oidc_value_stops_production_start_up(
    variable: str, value: str, tmp_path: Path
) -> None:
    production = {
        "DEBUG": "false",
        "SECRET_KEY": "k" * 20 + "-production-secret-" + "q" * 30,
        "ALLOWED_HOSTS": "registry.example.org",
        "DATABASE_URL": "postgres://registry@db.internal:5432/registry",
        "CELERY_BROKER_URL": "redis://broker.internal:6379/0",
        "MLFLOW_TRACKING_URI": "https://mlflow.internal",
    }

    result = load_settings({**production, **ENDPOINTS, variable: value}, tmp_path)

    assert result.returncode != 0
    assert f"ImproperlyConfigured: {variable}" in result.stderr
    assert CLIENT_SECRET not in result.stderr
