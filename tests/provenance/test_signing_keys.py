"""The registry's attestation signing keys: created once, rotated with a log event, private
halves only on disk (0600), public halves served."""

from __future__ import annotations

import json
import os
import stat
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from django.core.management import CommandError, call_command
from django.test import Client

from config.errors import Conflict
from provenance import services, signing_keys
from provenance.attestation_verify import parse_envelope, sign_statement, verify_envelope
from provenance.log_format import Actor
from provenance.models import LogEntry, SigningKey

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _keys_in_tmp(settings: Any, tmp_path: Path) -> None:
    settings.VAR_DIR = tmp_path
    settings.ATTESTATION_SIGNING_KEY_FILE = ""


def statement() -> dict[str, Any]:
    return {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "model", "digest": {"sha256": "ab" * 32}}],
        "predicateType": "https://slsa.dev/provenance/v1",
        "predicate": {"buildDefinition": {}, "runDetails": {}},
    }


def test_the_first_key_is_generated_once_with_a_private_file(tmp_path: Path) -> None:
    key = services.signing_key_ensure()
    again = services.signing_key_ensure()

    assert again == key
    assert key.scheme == "ecdsa-sha2-nistp256"
    path = tmp_path / "keys" / "attestation" / f"{key.key_id}.pem"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700
    assert LogEntry.objects.filter(event_type="signing_key.created").count() == 1


def test_the_private_key_is_nowhere_in_the_database() -> None:
    key = services.signing_key_ensure()
    private = (signing_keys.key_directory() / f"{key.key_id}.pem").read_bytes()
    secret = private.split(b"\n")[1].decode()

    stored = json.dumps(list(SigningKey.objects.values()), default=str) + "".join(
        bytes(e.entry).decode() for e in LogEntry.objects.all()
    )

    assert "PRIVATE" not in stored
    assert secret not in stored


def test_what_the_key_signs_verifies_with_the_published_public_key(client: Client) -> None:
    key = services.signing_key_ensure()
    envelope = sign_statement(statement(), signing_keys.load_signer(key.key_id))

    published = client.get("/api/v1/keys").json()["keys"][0]

    assert published["key_id"] == key.key_id
    assert published["public_key_pem"].startswith("-----BEGIN PUBLIC KEY-----")
    parsed = parse_envelope(envelope)
    assert verify_envelope(parsed, {published["key_id"]: published["public_key"]}) == [key.key_id]


def test_rotation_retires_the_old_key_and_is_logged() -> None:
    old = services.signing_key_ensure()
    envelope = sign_statement(statement(), signing_keys.load_signer(old.key_id))

    new = services.signing_key_rotate(actor=Actor(user_id=3, name="grace"), reason="yearly")

    old.refresh_from_db()
    assert old.retired_at is not None
    assert new.retired_at is None
    assert services.signing_key_ensure() == new
    rotated = json.loads(bytes(LogEntry.objects.get(event_type="signing_key.rotated").entry))
    assert rotated["actor"]["name"] == "grace"
    assert rotated["before"] == {"active_key_ids": [old.key_id]}
    assert rotated["reason"] == "yearly"
    keys = {k.key_id: k.public_key for k in SigningKey.objects.all()}
    assert verify_envelope(parse_envelope(envelope), keys) == [old.key_id]


def test_a_configured_key_file_is_used_and_cannot_be_rotated_here(
    settings: Any, tmp_path: Path
) -> None:
    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()
    )
    (tmp_path / "mounted.pem").write_bytes(pem)
    settings.ATTESTATION_SIGNING_KEY_FILE = str(tmp_path / "mounted.pem")

    key = services.signing_key_ensure()

    assert signing_keys.load_signer(key.key_id).private_bytes == pem
    assert not (tmp_path / "keys" / "attestation").exists()
    with pytest.raises(Conflict) as refused:
        services.signing_key_rotate(actor=Actor.system())
    assert refused.value.code == "signing_key_configured"


def test_init_keys_and_rotate_commands() -> None:
    out = StringIO()
    call_command("init_keys", stdout=out)
    call_command("rotate_signing_key", "--reason", "drill", stdout=out)

    assert "log key:" in out.getvalue()
    assert "new attestation key:" in out.getvalue()
    assert SigningKey.objects.filter(retired_at__isnull=True).count() == 1
    assert SigningKey.objects.count() == 2


def test_rotate_command_refuses_a_configured_key(settings: Any, tmp_path: Path) -> None:
    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()
    )
    (tmp_path / "mounted.pem").write_bytes(pem)
    settings.ATTESTATION_SIGNING_KEY_FILE = str(tmp_path / "mounted.pem")

    with pytest.raises(CommandError, match="ATTESTATION_SIGNING_KEY_FILE"):
        call_command("rotate_signing_key", stdout=StringIO())
