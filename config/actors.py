"""Who is acting, for the governance log, from any app's interface layer.

The roles a person holds live in the compliance app, which the lower apps may not import; this
wiring module resolves them lazily so a registry or provenance view can log a full actor.
"""

from __future__ import annotations

from django.contrib.auth.models import AnonymousUser, User

from provenance.log_format import Actor


def actor_for_user(user: User | AnonymousUser) -> Actor:
    if not isinstance(user, User):
        return Actor.system("anonymous")
    from compliance.selectors import actor_for  # noqa: PLC0415  (wiring across the layers)

    return actor_for(user)


def actor_for_user_id(user_id: int | None, *, fallback: str = "registry:worker") -> Actor:
    """The actor for work a person asked for that runs later (a Celery task gets their id)."""
    user = User.objects.filter(pk=user_id).first() if user_id is not None else None
    return actor_for_user(user) if user is not None else Actor.system(fallback)
