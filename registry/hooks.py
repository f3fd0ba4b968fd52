"""Who must hear about what sync and hashing find: an alias moved in MLflow behind the
registry's back, a version whose files changed.

The registry detects such moves while syncing but may not import the compliance app, which
decides what they mean (an incident, maybe a revert). Compliance registers a handler here when
Django starts (``ComplianceConfig.ready``); handlers run inside the sync's transaction, so an
incident is recorded atomically with the move that caused it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class AliasMove:
    model_name: str
    alias: str
    from_version: int | None
    to_version: int | None
    source: str
    history_id: int


OutOfBandHandler = Callable[[AliasMove], object]
_handlers: list[OutOfBandHandler] = []


def on_out_of_band_alias(handler: OutOfBandHandler) -> None:
    if handler not in _handlers:
        _handlers.append(handler)


def out_of_band_alias(move: AliasMove) -> None:
    for handler in list(_handlers):
        handler(move)


@dataclass(frozen=True)
class DigestChange:
    version_pk: int
    previous_digest: str
    digest: str


DigestHandler = Callable[[DigestChange], object]
_digest_handlers: list[DigestHandler] = []


def on_digest_changed(handler: DigestHandler) -> None:
    """Hear about a version whose files now hash differently (approvals bound to it are void)."""
    if handler not in _digest_handlers:
        _digest_handlers.append(handler)


def digest_changed(change: DigestChange) -> None:
    for handler in list(_digest_handlers):
        handler(change)
