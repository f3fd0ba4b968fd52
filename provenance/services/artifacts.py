"""Model artifacts: recorded by the digest the registry measured, signed as model.sig."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from django.db import transaction
from django.utils import timezone

from provenance import model_manifest, signing_keys
from provenance.models import Artifact, ArtifactKind, ModelManifest, ModelSignature
from provenance.services.keys import signing_key_ensure

logger = logging.getLogger(__name__)
# MLflow writes this into a version's artifact directory when a model is loaded by its
# models:/ URI (a local store is changed in place): metadata, not the model, so not hashed.
MLFLOW_METADATA = ("registered_model_meta",)


@dataclass(frozen=True)
class HashedModel:
    artifact: Artifact
    manifest: model_manifest.ModelManifest
    created: bool


def model_artifact_record(
    *,
    model_dir: Path,
    name: str,
    on_progress: Callable[[int, int], None] | None = None,
) -> HashedModel:
    """Hash a model directory (in parallel) and record it as an artifact with its manifest.

    Hashing happens outside any transaction; recording is idempotent by digest.
    """
    manifest = model_manifest.compute_manifest(
        model_dir, on_progress=on_progress, ignore=MLFLOW_METADATA
    )
    with transaction.atomic():
        artifact, created = Artifact.objects.get_or_create(
            digest=manifest.root_digest,
            defaults={
                "kind": ArtifactKind.MODEL,
                "name": name,
                "size": sum(f.size for f in manifest.files),
                "created_at": timezone.now(),
            },
        )
        if created:
            ModelManifest.objects.create(
                artifact=artifact,
                files=[f.to_dict() for f in manifest.files],
                ignore_paths=list(manifest.ignore_paths),
                computed_at=timezone.now(),
            )
    return HashedModel(artifact=artifact, manifest=manifest, created=created)


def model_digest_measure(
    *, model_dir: Path, on_progress: Callable[[int, int], None] | None = None
) -> str:
    """The model digest of a directory, recording nothing (re-verification compares it)."""
    return model_manifest.compute_manifest(
        model_dir, on_progress=on_progress, ignore=MLFLOW_METADATA
    ).root_digest


def model_signature_create(
    *, hashed: HashedModel, model_dir: Path, workdir: Path
) -> ModelSignature | None:
    """Sign a ``model.sig`` for a hashed model with the active key, unless one exists.

    model_signing signs with elliptic-curve keys only: with an Ed25519 registry key there is
    no model.sig (the registry's own attestations still are signed).
    """
    key = signing_key_ensure()
    existing = ModelSignature.objects.filter(artifact=hashed.artifact, signing_key=key).first()
    if existing is not None:
        return existing
    if key.scheme != "ecdsa-sha2-nistp256":
        logger.warning(
            "no model.sig: model_signing needs an ECDSA key, the active key is %s", key.scheme
        )
        return None
    signature_path = workdir / "model.sig"
    private_pem = signing_keys.load_signer(key.key_id).private_bytes
    model_manifest.sign_model(model_dir, private_pem, signature_path, manifest=hashed.manifest)
    bundle = signature_path.read_bytes()
    return ModelSignature.objects.create(
        artifact=hashed.artifact,
        signing_key=key,
        bundle=bundle,
        bundle_digest=hashlib.sha256(bundle).hexdigest(),
        created_at=timezone.now(),
    )
