"""What the caller may see, for any app's interface layer.

The rule is compliance's (it holds the roles), but the registry and provenance read endpoints
must apply it and may not import compliance: this wiring module resolves it lazily, as
config/actors.py does for the actor of a log entry. Every API read passes the result to its
selector, which narrows its queryset (provenance/visibility.py states the rule).
"""

from __future__ import annotations

from django.contrib.auth.models import AnonymousUser, User

from provenance.visibility import Visibility


def visibility_for(user: User | AnonymousUser) -> Visibility:
    if not isinstance(user, User) or not user.is_active:
        return Visibility.nothing()
    from compliance.selectors import visibility_of  # noqa: PLC0415  (wiring across the layers)

    return visibility_of(user)
