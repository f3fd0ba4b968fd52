"""``manage.py trust_signer NAME (--public-key FILE | --sigstore-identity ID --sigstore-issuer URL)
--predicate-type TYPE [...] [--datasets]``: trust a pipeline's signatures."""

from __future__ import annotations

import getpass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.serialization import load_pem_public_key
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import IntegrityError
from securesystemslib.signer import SSlibKey  # type: ignore[attr-defined]  # no __all__

from provenance.attestation_verify import (
    REGISTRY_PREDICATE_PREFIX,
    AttestationRejected,
    check_predicate_type,
)
from provenance.log_format import Actor
from provenance.services import trusted_signer_add


class Command(BaseCommand):
    help = "Trust a public key or a Sigstore identity to sign attestations of given types."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name")
        parser.add_argument("--public-key", type=Path, help="PEM public key (ECDSA P-256/Ed25519)")
        parser.add_argument("--sigstore-identity", default="", help="certificate identity (SAN)")
        parser.add_argument("--sigstore-issuer", default="", help="OIDC issuer URL")
        parser.add_argument("--predicate-type", action="append", required=True, dest="types")
        parser.add_argument(
            "--datasets", action="store_true", help="may introduce new dataset digests"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        for predicate_type in options["types"]:
            try:
                check_predicate_type(predicate_type)
            except AttestationRejected as exc:
                raise CommandError(exc.detail, returncode=2) from None
            if predicate_type.startswith(REGISTRY_PREDICATE_PREFIX):
                raise CommandError(
                    f"{predicate_type!r} is in the registry's own namespace: only the registry "
                    "signs such attestations",
                    returncode=2,
                )
        public_key = self._public_key(options)
        if public_key is None and not (options["sigstore_identity"] and options["sigstore_issuer"]):
            raise CommandError(
                "give --public-key, or both --sigstore-identity and --sigstore-issuer", returncode=2
            )
        try:
            signer = trusted_signer_add(
                name=options["name"],
                public_key=public_key,
                identity=options["sigstore_identity"],
                issuer=options["sigstore_issuer"],
                predicate_types=options["types"],
                may_register_datasets=options["datasets"],
                actor=Actor.system(f"cli:{getpass.getuser()}"),
            )
        except IntegrityError:
            raise CommandError(
                f"a signer named {options['name']!r} or with this key exists"
            ) from None
        self.stdout.write(
            f"trusted {signer.name} ({signer.kind}) for {', '.join(options['types'])}"
        )

    def _public_key(self, options: dict[str, Any]) -> dict[str, Any] | None:
        path: Path | None = options["public_key"]
        if path is None:
            return None
        try:
            key = SSlibKey.from_crypto(load_pem_public_key(path.read_bytes()))
        except (OSError, ValueError, TypeError) as exc:
            raise CommandError(
                f"{path}: not a usable PEM public key ({exc})", returncode=2
            ) from None
        key_dict: dict[str, Any] = key.to_dict()
        return key_dict
