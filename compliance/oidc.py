"""Single sign-on with OpenID Connect (mozilla-django-oidc), on only when configured.

This module decides who may sign in through the provider, never what they may do there: an
account created here has no password, no role and no staff rights. Roles are granted in the
registry (``compliance.services.role_grant``), which logs them. Settings: config/settings.py,
``OIDC_*``; the operator's side: docs/deployment.md, "Single sign-on".

The library checks the state, the nonce, the PKCE verifier and the ID token's signature; this
backend adds what it leaves out: the token's audience, issuer, expiry and authorised party, and
that the userinfo response describes the same subject as the ID token.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import wraps
from typing import Any

import jwt
import requests
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import User
from django.core.exceptions import SuspiciousOperation
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import path, reverse
from mozilla_django_oidc.auth import OIDCAuthenticationBackend
from mozilla_django_oidc.views import (
    OIDCAuthenticationCallbackView,
    OIDCAuthenticationRequestView,
)

from compliance.selectors import actor_for
from provenance.log_format import Event
from provenance.services import log_append

logger = logging.getLogger(__name__)

CLOCK_SKEW_SECONDS = 60
USERNAME_MAX_LENGTH = 150  # django.contrib.auth's User.username


class SignInRefused(SuspiciousOperation):
    """The provider vouched for someone this registry does not let in through single sign-on."""


@transaction.atomic
def sso_user_create(*, username: str, email: str, issuer: str, subject: str) -> User:
    """Create the account of someone signing in through single sign-on for the first time.

    It has no usable password, no role and no staff rights. The creation is logged
    (``user.created_via_sso``) with the provider's subject but not the e-mail address:
    the governance log is append-only, so it keeps no more personal data than it needs.
    """
    user = User.objects.create_user(username=username, email=email)
    log_append(
        Event(
            event_type="user.created_via_sso",
            actor=actor_for(user),
            object_type="user",
            object_id=str(user.pk),
            after={"username": username, "issuer": issuer, "subject": subject, "roles": []},
            reason="first sign-in through single sign-on",
        )
    )
    return user


def verified_email(claims: dict[str, Any]) -> str | None:
    """The e-mail address, only when the provider says it verified it (bool or "true")."""
    email = claims.get("email")
    verified = claims.get("email_verified")
    if not isinstance(email, str) or "@" not in email:
        return None
    if verified is True or (isinstance(verified, str) and verified.lower() == "true"):
        local, _, domain = email.rpartition("@")
        return f"{local}@{domain.lower()}"
    return None


class SingleSignOnBackend(OIDCAuthenticationBackend):  # type: ignore[misc]  # no type stubs
    """Signs people in with the authorization-code flow; settings.AUTHENTICATION_BACKENDS
    lists it only when single sign-on is configured."""

    def authenticate(self, request: HttpRequest | None, **kwargs: Any) -> User | None:
        # Only the callback view passes the nonce it kept in the session. A password form posted
        # to a URL carrying ?code=…&state=… must not start an exchange that skips those checks.
        if request is None or not kwargs.get("nonce"):
            return None
        try:
            user: User | None = super().authenticate(request, **kwargs)
        except (SuspiciousOperation, requests.RequestException) as exc:
            logger.warning("single sign-on refused: %s", exc)
            return None
        return user

    def get_user(self, user_id: int) -> AbstractBaseUser | None:
        # The library's get_user skips the is_active check: a deactivated account must lose
        # its open sessions, as it does with the password backend.
        return ModelBackend.get_user(self, user_id)

    def get_payload_data(self, token: str | bytes, key: Any) -> dict[str, Any]:
        """The ID token's claims, after checking signature, audience, issuer and expiry.

        Replaces the library's check, which verifies the signature only (and would accept
        ``alg: none`` when OIDC_ALLOW_UNSECURED_JWT is set).
        """
        algorithm = self.OIDC_RP_SIGN_ALGO
        try:
            if jwt.get_unverified_header(token).get("alg") != algorithm:
                raise SuspiciousOperation(f"ID token not signed with {algorithm}")
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[algorithm],
                audience=self.OIDC_RP_CLIENT_ID,
                issuer=settings.OIDC_ISSUER,
                leeway=CLOCK_SKEW_SECONDS,
                options={"require": ["iss", "aud", "sub", "exp", "iat"]},
            )
        except jwt.InvalidTokenError as exc:
            raise SuspiciousOperation(f"ID token refused: {exc}") from exc
        # OpenID Connect Core 3.1.3.7: with several audiences, azp must name this client.
        several = isinstance(claims["aud"], list) and len(claims["aud"]) > 1
        if several and claims.get("azp") != self.OIDC_RP_CLIENT_ID:
            raise SuspiciousOperation("ID token for several audiences names another azp")
        return claims

    def get_userinfo(
        self, access_token: str, id_token: str, payload: dict[str, Any]
    ) -> dict[str, Any]:
        claims: dict[str, Any] = super().get_userinfo(access_token, id_token, payload)
        # OpenID Connect Core 5.3.2: a userinfo response about another subject must not be used.
        if claims.get("sub") != payload["sub"]:
            raise SuspiciousOperation("userinfo describes another subject than the ID token")
        return claims

    def get_username(self, claims: dict[str, Any]) -> str:
        """The configured claim (OIDC_USERNAME_CLAIM), else ``sub``; "" when neither is usable."""
        value = claims.get(settings.OIDC_USERNAME_CLAIM) or claims.get("sub")
        if not isinstance(value, str) or len(value.strip()) > USERNAME_MAX_LENGTH:
            return ""
        return value.strip()

    def verify_claims(self, claims: dict[str, Any]) -> bool:
        if not self.get_username(claims):
            logger.warning(
                "single sign-on refused: no usable %s or sub", settings.OIDC_USERNAME_CLAIM
            )
            return False
        allowed = settings.OIDC_ALLOWED_DOMAINS
        if not allowed:
            return True
        email = verified_email(claims)
        if email is None:
            logger.warning("single sign-on refused: no verified e-mail address to check the domain")
            return False
        domain = email.rpartition("@")[2]
        if domain not in allowed:
            logger.warning("single sign-on refused: %s is not in OIDC_ALLOWED_DOMAINS", domain)
            return False
        return True

    def filter_users_by_claims(self, claims: dict[str, Any]) -> QuerySet[User]:
        # By username, never by e-mail: the library's default would hand any account whose
        # address the provider asserts to whoever signs in with it.
        return User.objects.filter(username=self.get_username(claims))

    def update_user(self, user: User, claims: dict[str, Any]) -> User:
        """Refuse accounts single sign-on must not open; otherwise leave the account as it is."""
        if not user.is_active:
            raise SignInRefused(f"{user.get_username()} is deactivated")
        if user.is_staff or user.is_superuser:
            # Administrators keep signing in with their local password: a provider that lets
            # people pick their own username must not be able to open the registry's admin.
            raise SignInRefused(f"{user.get_username()} is staff: sign in with a password")
        return user

    def create_user(self, claims: dict[str, Any]) -> User:
        username = self.get_username(claims)
        try:
            return sso_user_create(
                username=username,
                email=verified_email(claims) or "",
                issuer=settings.OIDC_ISSUER,
                subject=str(claims["sub"]),
            )
        except IntegrityError:  # a concurrent first sign-in created it a moment ago
            return self.update_user(User.objects.get(username=username), claims)


class SingleSignOnCallbackView(OIDCAuthenticationCallbackView):  # type: ignore[misc]
    """The provider's redirect back; a failure returns to the login page with a message."""

    @property
    def failure_url(self) -> str:
        return reverse("login")

    def login_failure(self) -> HttpResponse:
        messages.error(
            self.request,
            f"Signing in with {settings.OIDC_PROVIDER_NAME} did not succeed. "
            "Ask an administrator if this keeps happening.",
        )
        response: HttpResponse = super().login_failure()
        return response


def single_sign_on(request: HttpRequest) -> dict[str, Any]:
    """Template context: the provider's name when single sign-on is configured, else nothing."""
    if not settings.OIDC_ENABLED:
        return {}
    return {"sso_provider_name": settings.OIDC_PROVIDER_NAME}


def _when_configured(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Without OIDC settings the routes do not exist (404), and the library is never asked."""

    @wraps(view)
    def gated(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not settings.OIDC_ENABLED:
            raise Http404("single sign-on is not configured")
        return view(request, *args, **kwargs)

    return gated


# Included by config/urls.py under oidc/; the library's names, which it reverses itself.
urlpatterns = [
    path(
        "authenticate/",
        _when_configured(OIDCAuthenticationRequestView.as_view()),
        name="oidc_authentication_init",
    ),
    path(
        "callback/",
        _when_configured(SingleSignOnCallbackView.as_view()),
        name="oidc_authentication_callback",
    ),
]
