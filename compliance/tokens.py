"""API tokens for machines: their format, issuing and revoking them, checking one presented.

A token reads ``smr_<16 hex>_<43 url-safe characters>``. The first part, the *prefix*, is public:
it names the token in lists and logs and finds its row. The rest is 256 bits from the operating
system's CSPRNG. The database keeps only the SHA-256 of the whole token.

Why SHA-256 and not a slow password hash (PBKDF2, Argon2): a slow hash makes guessing a
*low-entropy* secret, such as a person's password, expensive for someone holding its hash. A
uniformly random 256-bit secret cannot be guessed whatever the speed of the hash, so a slow hash
would protect nothing more and would cost tens of milliseconds of CPU on every API request. The
hashes are still compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from compliance.choices import ApiTokenScope
from compliance.models import ApiToken
from compliance.selectors import actor_for, api_token_by_prefix
from config.errors import Conflict, InvalidInput, Unauthenticated
from provenance.log_format import Event
from provenance.services import log_append

TOKEN_TAG = "smr"  # noqa: S105  (a public marker that secret scanners can match)
PREFIX_HEX_CHARS = 16
SECRET_BYTES = 32
NAME_MAX_CHARS = 100
_TOKEN_SHAPE = re.compile(rf"({TOKEN_TAG}_[0-9a-f]{{{PREFIX_HEX_CHARS}}})_[A-Za-z0-9_-]{{43}}")
# last_used_at is a hint for the owner, not an audit trail: one write a minute per token at most.
LAST_USED_PRECISION = timedelta(minutes=1)


class TokenRefused(Unauthenticated):
    """A presented token that does not authenticate; ``code`` says why."""

    default_code = "token_invalid"


class TokenAlreadyRevoked(Conflict):
    default_code = "token_already_revoked"


@dataclass(frozen=True)
class IssuedToken:
    """A token just created and its secret: show ``secret`` once, then let it go."""

    token: ApiToken
    secret: str = field(repr=False)


def token_hash(presented: str) -> str:
    return hashlib.sha256(presented.encode()).hexdigest()


def prefix_of(presented: str) -> str | None:
    """The public prefix of a well-formed token, or None."""
    match = _TOKEN_SHAPE.fullmatch(presented)
    return match.group(1) if match else None


def _actor_name(acting_user: User | None, actor_name: str) -> str:
    if acting_user is not None:
        return acting_user.get_username()
    return actor_name or "system"


def _clean_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > NAME_MAX_CHARS:
        raise InvalidInput(
            f"a token needs a name of 1 to {NAME_MAX_CHARS} characters", code="token_name_invalid"
        )
    return name


def _clean_scopes(scopes: Iterable[str]) -> list[str]:
    chosen = set(scopes)
    unknown = chosen - set(ApiTokenScope.values)
    if not chosen or unknown:
        known = ", ".join(ApiTokenScope.values)
        raise InvalidInput(
            f"choose one or more scopes among {known}"
            + (f"; unknown: {', '.join(sorted(unknown))}" if unknown else ""),
            code="token_scopes_invalid",
        )
    return [scope for scope in ApiTokenScope.values if scope in chosen]


def _expiry(now: datetime, expires_in_days: int) -> datetime:
    longest = settings.API_TOKEN_MAX_DAYS
    if not 1 <= expires_in_days <= longest:
        raise InvalidInput(
            f"a token expires after 1 to {longest} days, not {expires_in_days}",
            code="token_expiry_invalid",
        )
    return now + timedelta(days=expires_in_days)


@transaction.atomic
def api_token_create(
    *,
    user: User,
    name: str,
    scopes: Iterable[str],
    expires_in_days: int,
    acting_user: User | None,
    actor_name: str = "",
) -> IssuedToken:
    """Issue a token to ``user``; the returned secret is the only copy there will ever be.

    Raises InvalidInput for an empty name, no or unknown scopes, an expiry beyond
    ``API_TOKEN_MAX_DAYS``, or an inactive user. The log entry carries the prefix, never the secret.
    """
    clean_name, clean_scopes = _clean_name(name), _clean_scopes(scopes)
    now = timezone.now()
    expires_at = _expiry(now, expires_in_days)
    if not user.is_active:
        raise InvalidInput(f"{user.get_username()} is not active", code="user_inactive")
    # 64 random bits: a clash between prefixes is vanishingly rare, and the unique constraint
    # would refuse it loudly rather than let two tokens share a row.
    prefix = f"{TOKEN_TAG}_{secrets.token_hex(PREFIX_HEX_CHARS // 2)}"
    secret = f"{prefix}_{secrets.token_urlsafe(SECRET_BYTES)}"
    token = ApiToken.objects.create(
        user=user,
        name=clean_name,
        prefix=prefix,
        secret_hash=token_hash(secret),
        scopes=clean_scopes,
        created_at=now,
        created_by_name=_actor_name(acting_user, actor_name),
        expires_at=expires_at,
    )
    _log_token("api_token.created", token, acting_user, actor_name, reason="")
    return IssuedToken(token=token, secret=secret)


@transaction.atomic
def api_token_revoke(
    *,
    token: ApiToken,
    acting_user: User | None,
    actor_name: str = "",
    reason: str = "",
) -> ApiToken:
    """Revoke a token at once; the row stays as history. Raises TokenAlreadyRevoked.

    Who may revoke which token is the caller's check: the owner's views find the token through
    ``selectors.api_token_of``, which never returns another person's.
    """
    locked = ApiToken.objects.select_for_update().select_related("user").get(pk=token.pk)
    if locked.revoked_at is not None:
        raise TokenAlreadyRevoked(
            f"{locked.prefix} was revoked at {locked.revoked_at:%Y-%m-%d %H:%M} UTC"
        )
    locked.revoked_at = timezone.now()
    locked.revoked_by = acting_user
    locked.revoked_by_name = _actor_name(acting_user, actor_name)
    locked.revoke_reason = reason
    locked.save(update_fields=["revoked_at", "revoked_by", "revoked_by_name", "revoke_reason"])
    _log_token("api_token.revoked", locked, acting_user, actor_name, reason=reason)
    return locked


def api_token_authenticate(*, presented: str) -> ApiToken:
    """The live token ``presented`` is, with its owner loaded; raises TokenRefused otherwise.

    Revoked and expired are told apart only once the secret matched: without the secret, every
    refusal reads the same. Records ``last_used_at`` at most once a minute.
    """
    prefix = prefix_of(presented)
    token = api_token_by_prefix(prefix) if prefix else None
    if token is None or not hmac.compare_digest(token.secret_hash, token_hash(presented)):
        raise TokenRefused("the API token is not valid")
    if token.revoked_at is not None:
        raise TokenRefused(f"the API token {token.prefix} was revoked", code="token_revoked")
    now = timezone.now()
    if token.expires_at <= now:
        raise TokenRefused(f"the API token {token.prefix} has expired", code="token_expired")
    if not token.user.is_active:
        raise TokenRefused("the owner of this API token is not active", code="token_owner_inactive")
    _last_used_record(token, now)
    return token


def _last_used_record(token: ApiToken, now: datetime) -> None:
    """Compare-and-set, so that concurrent requests with one token write once between them."""
    threshold = now - LAST_USED_PRECISION
    if token.last_used_at is not None and token.last_used_at > threshold:
        return
    ApiToken.objects.filter(
        Q(last_used_at__isnull=True) | Q(last_used_at__lte=threshold), pk=token.pk
    ).update(last_used_at=now)
    token.last_used_at = now


def _facts(token: ApiToken) -> dict[str, Any]:
    """What the log says about a token: never its secret nor its hash."""
    return {
        "owner": token.user.get_username(),
        "name": token.name,
        "prefix": token.prefix,
        "scopes": list(token.scopes),
        "expires_at": token.expires_at,
    }


def _log_token(
    event_type: str,
    token: ApiToken,
    acting_user: User | None,
    actor_name: str,
    *,
    reason: str,
) -> None:
    """Write the creation or revocation to the governance log, in the caller's transaction."""
    facts = _facts(token)
    revoked = token.revoked_at is not None
    log_append(
        Event(
            event_type=event_type,
            actor=actor_for(acting_user, name=_actor_name(acting_user, actor_name)),
            object_type="api_token",
            object_id=token.prefix,
            before={**facts, "active": True} if revoked else None,
            after={**facts, "active": not revoked},
            reason=reason,
        )
    )
