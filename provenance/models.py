"""What is proven: the governance transparency log (and, later, artifacts and attestations).

The log is an RFC 9162 Merkle tree whose leaves are the canonical JSON (RFC 8785) bytes of each
governance event. ``LogEntry``, ``MerkleNode`` and ``Checkpoint`` are append-only: database
triggers refuse UPDATE and DELETE on them (provenance/db.py), and ``verify_log`` detects what a
privileged attacker could still change, because checkpoints are signed with a key the database
never holds.
"""

from __future__ import annotations

from django.db import models


class LogEntry(models.Model):
    """Append-only: one governance event, leaf ``index`` of the Merkle tree.

    ``entry`` holds the exact canonical JSON bytes that were hashed; the other columns repeat
    some of its fields so they can be queried, and ``verify_log`` checks that they agree.
    """

    index = models.BigIntegerField(unique=True)
    event_type = models.CharField(max_length=64, db_index=True)
    occurred_at = models.DateTimeField(db_index=True)
    actor_id = models.BigIntegerField(null=True, blank=True)
    actor_name = models.CharField(max_length=256)
    request_id = models.CharField(max_length=64, blank=True, default="")
    object_type = models.CharField(max_length=64)
    object_id = models.CharField(max_length=256)
    entry = models.BinaryField()

    class Meta:
        ordering = ["index"]
        verbose_name_plural = "log entries"
        indexes = [models.Index(fields=["object_type", "object_id"], name="log_entry_object_idx")]

    def __str__(self) -> str:
        return f"#{self.index} {self.event_type} {self.object_type}:{self.object_id}"


class MerkleNode(models.Model):
    """Append-only: the hash of a complete subtree, kept so proofs never recompute the tree.

    Node (level, index) covers leaves [index * 2**level, (index + 1) * 2**level); level 0 holds
    the leaf hashes.
    """

    level = models.PositiveSmallIntegerField()
    index = models.BigIntegerField()
    hash = models.BinaryField(max_length=32)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["level", "index"], name="merkle_node_unique"),
        ]

    def __str__(self) -> str:
        return f"node {self.level}/{self.index}"


class LogState(models.Model):
    """The single row that appenders lock: current size and the right-edge subtree hashes.

    Locking it serialises appends, which is what makes indexes gapless.
    """

    size = models.BigIntegerField(default=0)
    frontier = models.JSONField(default=list)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"log of {self.size} entries"


class LogKey(models.Model):
    """A public key that has signed checkpoints (the private half never enters the database)."""

    name = models.CharField(max_length=256)
    verifier_key = models.CharField(max_length=512, unique=True)
    created_at = models.DateTimeField()
    retired_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.verifier_key


class Checkpoint(models.Model):
    """Append-only: a signed tree head in the C2SP checkpoint (signed note) format."""

    tree_size = models.BigIntegerField(unique=True)
    root_hash = models.BinaryField(max_length=32)
    note = models.TextField(help_text="the signed note, verbatim")
    key = models.ForeignKey(LogKey, on_delete=models.PROTECT, related_name="checkpoints")
    issued_at = models.DateTimeField()

    class Meta:
        ordering = ["-tree_size"]

    def __str__(self) -> str:
        return f"checkpoint at size {self.tree_size}"


class LogVerification(models.Model):
    """The outcome of one full ``verify_log`` run, shown on the log status page."""

    started_at = models.DateTimeField()
    finished_at = models.DateTimeField()
    tree_size = models.BigIntegerField()
    checkpoints_checked = models.IntegerField(default=0)
    ok = models.BooleanField()
    first_bad_index = models.BigIntegerField(null=True, blank=True)
    problem = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["-started_at", "-id"]

    def __str__(self) -> str:
        return f"verification at {self.started_at}: {'ok' if self.ok else 'FAILED'}"


class SigningKey(models.Model):
    """A key the registry signs attestations with: the public half only.

    The private half lives in a file (``ATTESTATION_SIGNING_KEY_FILE`` or ``var/keys/attestation``,
    mode 0600) and never enters the database. Retired keys stay, so what they signed verifies.
    """

    key_id = models.CharField(max_length=64, unique=True)
    scheme = models.CharField(max_length=32)
    public_key = models.JSONField(help_text="securesystemslib public key dict")
    public_pem = models.TextField()
    created_at = models.DateTimeField()
    retired_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.scheme} {self.key_id[:16]}"


class ArtifactKind(models.TextChoices):
    MODEL = "model", "Model"
    DATASET = "dataset", "Dataset"


class Artifact(models.Model):
    """Something the registry hashed itself, identified by its sha256 digest.

    For a model, the digest is the OpenSSF model_signing root digest over its manifest.
    """

    digest = models.CharField(max_length=64, unique=True)
    kind = models.CharField(max_length=16, choices=ArtifactKind.choices)
    name = models.CharField(max_length=500)
    size = models.BigIntegerField()
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.kind} sha256:{self.digest}"


class ModelManifest(models.Model):
    """Per-file sha256 digests of a model artifact, in model_signing's order."""

    artifact = models.OneToOneField(Artifact, on_delete=models.PROTECT, related_name="manifest")
    files = models.JSONField(help_text='[{"path", "size", "sha256"}]')
    ignore_paths = models.JSONField(default=list)
    computed_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"manifest of {self.artifact}"


class ModelSignature(models.Model):
    """A ``model.sig`` the registry signed (Sigstore bundle v0.3 around DSSE, model_signing)."""

    artifact = models.ForeignKey(Artifact, on_delete=models.PROTECT, related_name="signatures")
    signing_key = models.ForeignKey(SigningKey, on_delete=models.PROTECT, related_name="+")
    bundle = models.BinaryField()
    bundle_digest = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"model.sig of {self.artifact} by {self.signing_key}"
