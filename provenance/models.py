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


class SignerKind(models.TextChoices):
    KEY = "key", "Public key"
    SIGSTORE = "sigstore", "Sigstore identity"


class TrustedSigner(models.Model):
    """Whose signatures the registry accepts on attestations, and for which predicate types.

    A key signer is a securesystemslib public key; a Sigstore signer is a certificate identity
    (e.g. a CI workflow) and its OIDC issuer, checked offline against the pinned trusted root.
    """

    name = models.CharField(max_length=128, unique=True)
    kind = models.CharField(max_length=16, choices=SignerKind.choices)
    key_id = models.CharField(max_length=64, blank=True, default="")
    public_key = models.JSONField(null=True, blank=True, help_text="securesystemslib key dict")
    identity = models.CharField(max_length=500, blank=True, default="")
    issuer = models.CharField(max_length=500, blank=True, default="")
    predicate_types = models.JSONField(default=list, help_text="predicate types it may sign")
    may_register_datasets = models.BooleanField(
        default=False, help_text="its attestations may introduce new dataset digests"
    )
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["key_id"],
                condition=models.Q(kind="key"),
                name="trusted_signer_key_unique",
            ),
            models.CheckConstraint(
                condition=(
                    models.Q(kind="key", public_key__isnull=False)
                    | (models.Q(kind="sigstore") & ~models.Q(identity="") & ~models.Q(issuer=""))
                ),
                name="trusted_signer_complete",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class AttestationFormat(models.TextChoices):
    DSSE = "dsse", "DSSE envelope"
    SIGSTORE = "sigstore", "Sigstore bundle"
    MODEL_SIG = "model_sig", "model.sig (key-signed Sigstore bundle)"


class VerificationStatus(models.TextChoices):
    VERIFIED = "verified", "Verified"
    FAILED = "failed", "Failed re-verification"


class Attestation(models.Model):
    """A verified attestation, its bytes kept verbatim (never re-serialised) and deduplicated.

    ``signer`` is set for attestations from pipelines, ``signing_key`` for those the registry
    signed itself. The verification columns record the latest re-verification: a signature that
    verified at the door can stop verifying when its signer is distrusted or the bytes change.
    """

    envelope = models.BinaryField()
    envelope_digest = models.CharField(max_length=64, unique=True)
    format = models.CharField(max_length=16, choices=AttestationFormat.choices)
    predicate_type = models.CharField(max_length=256, db_index=True)
    statement = models.JSONField()
    signer = models.ForeignKey(
        TrustedSigner, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    signing_key = models.ForeignKey(
        SigningKey, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    received_at = models.DateTimeField()
    verification_status = models.CharField(
        max_length=16, choices=VerificationStatus.choices, default=VerificationStatus.VERIFIED
    )
    verified_at = models.DateTimeField(null=True, blank=True)
    verification_problem = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["-received_at"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(signer__isnull=False) | models.Q(signing_key__isnull=False),
                name="attestation_has_signer",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.predicate_type} sha256:{self.envelope_digest[:12]}"


# A version number in a subject name: ASCII digits that the database's integer column holds
# ("²" is a digit to str.isdigit, and int() refuses it; ten digits may overflow the column;
# leading zeros do not count). Other digits are refused at the door (statement checks).
_VERSION_DIGITS = 9


def named_version(subject_name: str) -> tuple[str, int] | None:
    """The (registered model, version) a subject named ``<model>/<version>`` names; None for
    any other name."""
    model, _, number = subject_name.rpartition("/")
    if not model or not number.isascii() or not number.isdigit():
        return None
    if len(number.lstrip("0")) > _VERSION_DIGITS:
        return None
    return model, int(number)


class AttestationSubject(models.Model):
    """An artifact an attestation speaks of (its subject, matched by digest).

    ``named_model``: for a model's files, the registered model whose version the statement
    names them as (``<model>/<version>``), "" when it names none. Whoever may not see that
    model may not see the attestation (registry/visible_selectors.py), even when the same
    files are also a version they may see.
    """

    attestation = models.ForeignKey(Attestation, on_delete=models.CASCADE, related_name="subjects")
    artifact = models.ForeignKey(Artifact, on_delete=models.PROTECT, related_name="attestations")
    name = models.CharField(max_length=500, blank=True, default="")
    named_model = models.CharField(max_length=500, blank=True, default="")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["attestation", "artifact"], name="attestation_subject_unique"
            ),
        ]
        indexes = [models.Index(fields=["named_model"], name="attestation_subject_model")]

    def __str__(self) -> str:
        return f"{self.name} in {self.attestation_id}"


class NodeKind(models.TextChoices):
    DATASET = "dataset", "Dataset"
    RUN = "run", "Run"
    MODEL_VERSION = "model_version", "Model version"
    BASE_MODEL = "base_model", "Base model"
    EVALUATION = "evaluation", "Evaluation"
    ALIAS = "alias", "Alias"


class EdgeRelation(models.TextChoices):
    """How the downstream node relates to the upstream one (edges point downstream)."""

    TRAINED_ON = "trained-on", "trained on"
    PRODUCED = "produced", "produced"
    EVALUATED_BY = "evaluated-by", "evaluated by"
    DERIVED_FROM = "derived-from", "derived from"
    PROMOTED_TO = "promoted-to", "promoted to"


class LineageNode(models.Model):
    """A thing in the lineage graph, named by ``kind`` and a stable ``key``.

    Keys: datasets and base models ``sha256:<hex>``; runs their run id (the MLflow run id or the
    pipeline's invocation id); model versions ``<name>/<version>``; evaluations the digest of
    the attestation that reports them; aliases ``<name>@<alias>``. ``artifact`` is set when the
    registry holds an artifact for the node (a hashed model, an attested dataset).
    """

    kind = models.CharField(max_length=16, choices=NodeKind.choices)
    key = models.CharField(max_length=600)
    label = models.CharField(max_length=500, blank=True, default="")
    artifact = models.ForeignKey(
        Artifact, on_delete=models.PROTECT, null=True, blank=True, related_name="lineage_nodes"
    )
    attributes = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["kind", "key"]
        constraints = [
            models.UniqueConstraint(fields=["kind", "key"], name="lineage_node_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.kind}:{self.key}"


class LineageEdge(models.Model):
    """``upstream`` → ``downstream``, proven by one verified attestation.

    Edges are derived from attestations, never typed in. The same pair may be proven by several
    attestations (one edge each). ``ended_at`` closes an edge that stopped being true — an alias
    that moved away — without erasing that it once was.
    """

    upstream = models.ForeignKey(LineageNode, on_delete=models.PROTECT, related_name="out_edges")
    downstream = models.ForeignKey(LineageNode, on_delete=models.PROTECT, related_name="in_edges")
    relation = models.CharField(max_length=16, choices=EdgeRelation.choices)
    attestation = models.ForeignKey(
        Attestation, on_delete=models.PROTECT, related_name="lineage_edges"
    )
    created_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["upstream", "downstream", "relation", "attestation"],
                name="lineage_edge_unique",
            ),
            models.CheckConstraint(
                condition=~models.Q(upstream=models.F("downstream")), name="lineage_edge_no_loop"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.upstream} -{self.relation}-> {self.downstream}"


class ScanVerdict(models.TextChoices):
    CLEAN = "clean", "Clean"
    WARNING = "warning", "Warning"
    UNKNOWN = "unknown", "Unknown"
    UNSAFE = "unsafe", "Unsafe"


class ModelScan(models.Model):
    """One scan of a model artifact's files for embedded code, signed by the registry.

    ``report`` is the full per-file report (the provenance.model_scan package); ``scanners`` the
    scanner names and versions, so a scanner upgrade can trigger a re-scan. Never updated:
    every scan is a new row, the latest is the one that counts.
    """

    artifact = models.ForeignKey(Artifact, on_delete=models.PROTECT, related_name="scans")
    verdict = models.CharField(max_length=16, choices=ScanVerdict.choices)
    policy = models.CharField(max_length=32)
    scanners = models.JSONField(default=list)
    report = models.JSONField()
    counts = models.JSONField(default=dict)
    attestation = models.ForeignKey(Attestation, on_delete=models.PROTECT, related_name="+")
    scanned_at = models.DateTimeField()

    class Meta:
        ordering = ["-scanned_at", "-id"]
        indexes = [models.Index(fields=["artifact", "-scanned_at"], name="model_scan_latest_idx")]

    def __str__(self) -> str:
        return f"scan of {self.artifact}: {self.verdict}"
