"""The log's signing key: Ed25519, kept apart from attestation keys, never in the database.

Loaded from ``LOG_SIGNING_KEY_FILE`` (a note signer key, ``PRIVATE+KEY+<name>+<hash>+<key>``) or
generated once under ``VAR_DIR/keys/log/`` with mode 0600. Its public half is recorded in
``LogKey`` so checkpoints signed by a retired key stay verifiable.
"""

from __future__ import annotations

import contextlib
import functools
import os
from pathlib import Path

from django.conf import settings

from provenance.signed_note import NoteSigner


def key_path() -> Path:
    configured = settings.LOG_SIGNING_KEY_FILE
    return Path(configured) if configured else settings.VAR_DIR / "keys" / "log" / "signer.key"


def _generate(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    signer = NoteSigner.generate(settings.LOG_ORIGIN)
    # O_EXCL: two processes starting together must not both write a key.
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="ascii") as handle:
        handle.write(signer.signer_key + "\n")


@functools.lru_cache(maxsize=1)
def _load(path: Path) -> NoteSigner:
    if not path.exists():
        if settings.LOG_SIGNING_KEY_FILE:
            raise FileNotFoundError(f"LOG_SIGNING_KEY_FILE: {path} does not exist")
        with contextlib.suppress(FileExistsError):  # another process generated it first
            _generate(path)
    return NoteSigner.from_signer_key(path.read_text(encoding="ascii").strip())


def log_signer() -> NoteSigner:
    return _load(key_path())


def reset_cache() -> None:
    _load.cache_clear()
