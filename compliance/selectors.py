"""Reads of the compliance app."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from functools import cache, lru_cache
from typing import Any, NamedTuple

from django.contrib.auth.models import User
from django.db import connection, connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Model, Q, QuerySet

from compliance.models import ApiToken, RoleAssignment, SecurityRole
from provenance.log_format import Actor
from provenance.visibility import Visibility
from registry.models import RegisteredModel


def role_catalogue() -> QuerySet[SecurityRole]:
    return SecurityRole.objects.order_by("name")


def active_assignments(
    *, registered_model: RegisteredModel | None = None
) -> QuerySet[RoleAssignment]:
    """Active grants; for a model, its own grants and the global ones that cover it."""
    assignments = RoleAssignment.objects.filter(revoked_at__isnull=True).select_related(
        "user", "role", "registered_model"
    )
    if registered_model is not None:
        assignments = assignments.filter(
            Q(registered_model__isnull=True) | Q(registered_model=registered_model)
        )
    return assignments.order_by("role__name", "user__username")


def roles_held(*, user: User, registered_model: RegisteredModel | None = None) -> set[str]:
    """Keys of the roles ``user`` holds now: global ones, plus those on ``registered_model``."""
    held = _held_with_token(user)
    if held is not None:
        wanted = {None, registered_model.pk if registered_model is not None else None}
        return {grant.role for grant in held if grant.model_id in wanted}
    scope = Q(registered_model__isnull=True)
    if registered_model is not None:
        scope |= Q(registered_model=registered_model)
    return set(
        RoleAssignment.objects.filter(scope, user_id=user.pk, revoked_at__isnull=True).values_list(
            "role__key", flat=True
        )
    )


def actor_for(
    user: User | None, *, name: str = "", registered_model: RegisteredModel | None = None
) -> Actor:
    """The acting person for the governance log, with the roles they hold right now."""
    if user is None:
        return Actor.system(name or "system")
    roles = roles_held(user=user, registered_model=registered_model)
    return Actor(user_id=user.pk, name=user.get_username(), roles=tuple(sorted(roles)))


def api_tokens_of(*, user: User) -> QuerySet[ApiToken]:
    """The tokens ``user`` owns, newest first, revoked and expired ones included."""
    return ApiToken.objects.filter(user_id=user.pk).order_by("-created_at", "-id")


def api_token_of(*, user: User, prefix: str) -> ApiToken | None:
    """One of ``user``'s own tokens; another person's token is None, exactly like a missing one."""
    return api_tokens_of(user=user).filter(prefix=prefix).first()


def api_token_by_prefix(prefix: str) -> ApiToken | None:
    """Any token by its public prefix, with its owner and the roles the owner holds now, for
    authenticating a request: one statement, written without the ORM (every API request asks
    it; composing the ORM's query took longer than running it).

    The roles are kept on the owner's instance, which lives as long as the request: for that
    request ``visibility_of`` and ``roles_held`` answer from them instead of asking again.
    """
    with connection.cursor() as cursor:
        cursor.execute(_token_statement(connection.vendor), [prefix])
        row = cursor.fetchone()
    if row is None:
        return None
    wrapper = connections[connection.alias]  # this thread's: converters belong to it
    token_columns, user_columns = _columns(ApiToken, wrapper), _columns(User, wrapper)
    split = len(token_columns)
    token: ApiToken = _instance(ApiToken, token_columns, row[:split], wrapper)
    user: User = _instance(User, user_columns, row[split : split + len(user_columns)], wrapper)
    held = json.loads(row[-1]) if row[-1] else []
    user.__dict__[_HELD_ATTR] = tuple(Grant(str(key), pk, name) for key, pk, name in held)
    ApiToken.user.field.set_cached_value(token, user)
    return token


class Grant(NamedTuple):
    """A role someone holds now: its key, and the model it is held on (None: globally)."""

    role: str
    model_id: int | None
    model_name: str | None


# Where ``api_token_by_prefix`` leaves the owner's grants, on the owner's instance.
_HELD_ATTR = "_grants_read_with_token"


def _held_with_token(user: User) -> tuple[Grant, ...] | None:
    held: tuple[Grant, ...] | None = user.__dict__.get(_HELD_ATTR)
    return held


_Columns = list[tuple[Any, list[Callable[[Any, Any, Any], Any]]]]


@lru_cache(maxsize=32)
def _columns(model: type[Model], wrapper: BaseDatabaseWrapper) -> _Columns:
    """A model's concrete fields, each with the converters the ORM applies to its values read
    through ``wrapper`` (one per thread)."""
    fields: list[Any] = list(model._meta.concrete_fields)  # (the stubs lack the converters)
    return [
        (field, wrapper.ops.get_db_converters(field.cached_col) + field.get_db_converters(wrapper))
        for field in fields
    ]


def _instance(
    model: type[Model], columns: _Columns, row: Sequence[Any], wrapper: BaseDatabaseWrapper
) -> Any:
    """An instance from a row of its concrete columns, converted as the ORM converts them."""
    values = []
    for (field, converters), read in zip(columns, row, strict=True):
        value = read
        for convert in converters:
            value = convert(value, field.cached_col, wrapper)
        values.append(value)
    return model.from_db(wrapper.alias, [field.attname for field, _ in columns], values)


@cache
def _token_statement(vendor: str) -> str:
    """The token, its owner and the owner's grants now (a JSON array of [role key, model id,
    model name]) in one row."""
    quote = connection.ops.quote_name
    listed = ", ".join(
        [f"t.{quote(field.column)}" for field in ApiToken._meta.concrete_fields]
        + [f"u.{quote(field.column)}" for field in User._meta.concrete_fields]
    )
    grants = (
        "json_agg(json_build_array(k.key, r.registered_model_id, m.name))::text"
        if vendor == "postgresql"
        else "json_group_array(json_array(k.key, r.registered_model_id, m.name))"
    )
    return (
        f"SELECT {listed}, (SELECT {grants} "  # noqa: S608  (names from the models)
        f"FROM {quote(RoleAssignment._meta.db_table)} r "
        f"JOIN {quote(SecurityRole._meta.db_table)} k ON k.id = r.role_id "
        f"LEFT JOIN {quote(RegisteredModel._meta.db_table)} m ON m.id = r.registered_model_id "
        "WHERE r.user_id = t.user_id AND r.revoked_at IS NULL) "
        f"FROM {quote(ApiToken._meta.db_table)} t "
        f"JOIN {quote(User._meta.db_table)} u ON u.id = t.user_id "
        "WHERE t.prefix = %s"
    )


# --- who sees what (provenance/visibility.py states the rule; config/access.py wires it) -------


def sees_everything(user: User) -> bool:
    """Staff, superusers and anyone holding a role globally see every model."""
    if not user.is_active:
        return False
    if user.is_staff or user.is_superuser:
        return True
    return RoleAssignment.objects.filter(
        user_id=user.pk, revoked_at__isnull=True, registered_model__isnull=True
    ).exists()


def visible_models(user: User) -> QuerySet[RegisteredModel]:
    """The registered models ``user`` may see: all of them, or those they hold a role on."""
    if not user.is_active:
        return RegisteredModel.objects.none()
    if sees_everything(user):
        return RegisteredModel.objects.all()
    return RegisteredModel.objects.filter(
        pk__in=RoleAssignment.objects.filter(
            user_id=user.pk, revoked_at__isnull=True, registered_model__isnull=False
        ).values("registered_model_id")
    )


def visibility_of(user: User) -> Visibility:
    """What ``user`` may see, for the selectors of every app: the rule of ``sees_everything``
    and ``visible_models``, read in one query (every API request asks it, so it is written
    without the ORM's per-query overhead)."""
    if not user.is_active:
        return Visibility.nothing()
    if user.is_staff or user.is_superuser:
        return Visibility.unrestricted()
    held = _held_with_token(user)
    if held is not None:
        return _visibility([grant.model_name for grant in held])
    quote = connection.ops.quote_name
    sql = (
        f"SELECT m.name FROM {quote(RoleAssignment._meta.db_table)} r "  # noqa: S608
        f"LEFT JOIN {quote(RegisteredModel._meta.db_table)} m ON m.id = r.registered_model_id "
        "WHERE r.user_id = %s AND r.revoked_at IS NULL"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [user.pk])
        return _visibility([name for (name,) in cursor.fetchall()])


def _visibility(held: list[str | None]) -> Visibility:
    """From the names of the models someone holds roles on (None: a role held globally)."""
    if any(name is None for name in held):
        return Visibility.unrestricted()
    names = frozenset(str(name) for name in held)
    return Visibility(everything=False, has_role=bool(names), model_names=names)


def role_catalogue_for(*, visibility: Visibility) -> QuerySet[SecurityRole]:
    """The catalogue, for anyone holding a role (an outsider learns nothing of it)."""
    return role_catalogue() if visibility.has_role else SecurityRole.objects.none()


def assignments_visible(*, user: User, visibility: Visibility) -> QuerySet[RoleAssignment]:
    """Grants, active and revoked: all of them for those who see everything; otherwise the
    grants on the models one may see, and one's own."""
    assignments = RoleAssignment.objects.select_related("user", "role", "registered_model")
    if not visibility.everything:
        assignments = assignments.filter(
            Q(registered_model__name__in=sorted(visibility.model_names)) | Q(user_id=user.pk)
        )
    return assignments.order_by("-id")
