"""Write an evidence bundle: a deterministic zip with a signed manifest (docs/evidence.md).

Files are streamed into the zip while their sha256 is computed, so neither the attestations nor
the log extract are held in memory. Every entry carries the bundle's own time and fixed
permissions, and the manifest is signed with deterministic signatures: the same facts and the
same checkpoint give the same bytes.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import logging
import zipfile
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import rfc8785
from django.conf import settings

from compliance.evidence import collect
from compliance.evidence.facts import AttestationFacts, EvidenceFacts, LogFacts, VersionFacts
from compliance.models import EvidenceBundle
from provenance import signing_keys
from provenance.log_format import format_time
from provenance.log_verification import DatabaseNodeReader
from provenance.merkle import consistency_proof, inclusion_proofs
from provenance.models import Checkpoint, LogVerification, ModelSignature, SigningKey, TrustedSigner

logger = logging.getLogger(__name__)

MANIFEST_TYPE = "https://secmlops.dev/evidence/manifest/v1"
MANIFEST_PAYLOAD_TYPE = "application/vnd.secmlops.evidence-manifest+json"
UNLISTED = ("manifest.json", "manifest.json.dsse", "manifest.json.tsr")
PROOF_BATCH = 500
VERIFIER_SOURCE = Path(__file__).with_name("verifier.py")

Progress = Callable[[str, int, int], None]

MEDIA_TYPES = {
    ".json": "application/json",
    ".jsonl": "application/jsonl",
    ".txt": "text/plain; charset=utf-8",
    ".md": "text/markdown; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".pdf": "application/pdf",
    ".py": "text/x-python; charset=utf-8",
    ".pem": "application/x-pem-file",
    ".vkey": "text/plain; charset=utf-8",
    ".sig": "application/vnd.dev.sigstore.bundle.v0.3+json",
}


def media_type(path: str) -> str:
    if path.endswith(".intoto.jsonl"):
        return "application/vnd.in-toto.dsse+jsonl"
    if path.endswith(".cdx.json"):
        return "application/vnd.cyclonedx+json"
    return MEDIA_TYPES.get(Path(path).suffix, "application/octet-stream")


def canonical_json(document: Any) -> bytes:
    return rfc8785.dumps(document)


def pretty_json(document: Any) -> bytes:
    """What people read: sorted keys, indented, UTF-8, one trailing newline."""
    return (json.dumps(document, sort_keys=True, indent=2, ensure_ascii=False) + "\n").encode()


@dataclass(frozen=True)
class FileRecord:
    sha256: str
    size: int
    media_type: str


class _HashingWriter(io.RawIOBase):
    def __init__(self, target: IO[bytes]) -> None:
        self._target = target
        self.digest = hashlib.sha256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        chunk = bytes(data)
        self._target.write(chunk)
        self.digest.update(chunk)
        self.size += len(chunk)
        return len(chunk)


class BundleZip:
    """A zip whose entries all carry the same time and permissions, recording each file."""

    def __init__(self, path: Path, moment: datetime) -> None:
        self._zip = zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6)
        self._date_time = moment.timetuple()[:6]
        self._names: set[str] = set()
        self.files: dict[str, FileRecord] = {}

    def _info(self, name: str) -> zipfile.ZipInfo:
        if name in self._names:
            raise ValueError(f"{name} written twice")
        self._names.add(name)
        info = zipfile.ZipInfo(name, date_time=self._date_time)
        info.compress_type = zipfile.ZIP_DEFLATED
        info.create_system = 3
        info.external_attr = 0o100644 << 16
        return info

    @contextmanager
    def stream(self, name: str) -> Iterator[_HashingWriter]:
        with self._zip.open(self._info(name), "w", force_zip64=True) as target:
            writer = _HashingWriter(target)
            yield writer
        if name not in UNLISTED:
            self.files[name] = FileRecord(writer.digest.hexdigest(), writer.size, media_type(name))

    def write(self, name: str, data: bytes) -> FileRecord:
        with self.stream(name) as writer:
            writer.write(data)
        return self.files.get(name) or FileRecord(
            hashlib.sha256(data).hexdigest(), len(data), media_type(name)
        )

    def close(self) -> None:
        self._zip.close()


@dataclass
class _Context:
    bundle: EvidenceBundle
    checkpoint: Checkpoint
    scope: collect.Scope
    out: BundleZip
    progress: Progress
    moment: datetime


def build(bundle: EvidenceBundle, path: Path, *, progress: Progress | None = None) -> None:
    """Write ``bundle`` as a zip at ``path``. ``bundle.checkpoint`` and ``generated_at`` are set."""
    assert bundle.checkpoint is not None  # noqa: S101  (evidence_build fixes both first)
    assert bundle.generated_at is not None  # noqa: S101
    out = BundleZip(path, bundle.generated_at)
    context = _Context(
        bundle=bundle,
        checkpoint=bundle.checkpoint,
        scope=collect.scope_of(bundle),
        out=out,
        progress=progress or (lambda step, done, total: None),
        moment=bundle.generated_at,
    )
    try:
        facts = _write_evidence(context)
        _write_manifest(context, facts)
    finally:
        out.close()


def _write_evidence(context: _Context) -> EvidenceFacts:
    out, scope = context.out, context.scope
    context.progress("attestations", 0, 1)
    attestations, statements, signer_ids = _write_attestations(context)
    model_sigs = _write_model_signatures(context)
    digests_by_request = collect.promotion_attestations(statements)
    versions = collect.version_facts(scope, attestations, statements)
    for version in versions:
        key = (version["model"], version["version"])
        version["model_sig"] = model_sigs.get(key)
    log, counts = _write_log(context, [a["envelope_sha256"] for a in attestations])
    _write_keys(context, signer_ids, attestations)
    context.progress("facts", 0, 1)
    facts: EvidenceFacts = {
        "bundle": _bundle_facts(context),
        "models": collect.model_facts(scope),
        "versions": versions,
        "datasets": collect.dataset_facts(versions),
        "promotions": collect.promotion_facts(scope, statements, digests_by_request),
        "alias_history": collect.alias_facts(scope),
        "incidents": collect.incident_facts(scope),
        "attestations": attestations,
        "log": log,
        "event_counts": counts,
        "lineage": collect.lineage_facts(scope),
    }
    _write_json(out, facts)
    context.progress("report", 0, 1)
    _write_renderings(out, facts)
    out.write("README.txt", readme(facts).encode())
    out.write("verify.py", VERIFIER_SOURCE.read_bytes())
    return facts


def _bundle_facts(context: _Context) -> Any:
    bundle = context.bundle
    return {
        "id": bundle.pk,
        "scope": bundle.scope,
        "title": title_of(bundle),
        "model": bundle.model_name,
        "version": bundle.version.version if bundle.version else None,
        "period_start": format_time(bundle.period_start) if bundle.period_start else None,
        "period_end": format_time(bundle.period_end) if bundle.period_end else None,
        "generated_at": format_time(context.moment),
        "generated_by": bundle.requested_by_name,
        "registry_url": collect.registry_url(),
        "log_origin": settings.LOG_ORIGIN,
    }


def title_of(bundle: EvidenceBundle) -> str:
    if bundle.version is not None:
        return f"{bundle.version.registered_model.name} version {bundle.version.version}"
    period = ""
    if bundle.period_start and bundle.period_end:
        period = f", {bundle.period_start:%Y-%m-%d} to {bundle.period_end:%Y-%m-%d}"
    name = bundle.registered_model.name if bundle.registered_model else "Model inventory"
    return f"{name}{period}"


# --- attestations and model signatures -------------------------------------------------------


def _one_line(envelope: bytes) -> bytes:
    """The envelope as received, on one line (JSON Lines); re-encoded only if it had several:
    signatures cover the payload inside, not the envelope's whitespace."""
    stripped = envelope.strip()
    if b"\n" not in stripped and b"\r" not in stripped:
        return stripped + b"\n"
    return json.dumps(json.loads(stripped), separators=(",", ":")).encode() + b"\n"


def _write_attestations(
    context: _Context,
) -> tuple[list[AttestationFacts], dict[str, dict[str, Any]], set[int]]:
    ids = collect.attestation_ids(context.scope)
    rows: list[AttestationFacts] = []
    statements: dict[str, dict[str, Any]] = {}
    signer_ids: set[int] = set()
    for done, attestation in enumerate(collect.attestation_rows(ids), start=1):
        name = f"attestations/{attestation.envelope_digest}.intoto.jsonl"
        context.out.write(name, _one_line(bytes(attestation.envelope)))
        rows.append(collect.attestation_facts(attestation, name))
        statements[attestation.envelope_digest] = attestation.statement or {}
        if attestation.signer_id is not None:
            signer_ids.add(attestation.signer_id)
        if done % 100 == 0:
            context.progress("attestations", done, len(ids))
    rows.sort(key=lambda row: row["file"])
    context.out.write("attestations/index.json", pretty_json(rows))
    return rows, statements, signer_ids


def _write_model_signatures(context: _Context) -> dict[tuple[str, int], str]:
    by_artifact = {
        v.model_artifact_id: v for v in context.scope.versions if v.model_artifact_id is not None
    }
    latest: dict[int, ModelSignature] = {}
    for signature in ModelSignature.objects.filter(artifact_id__in=list(by_artifact)).order_by(
        "artifact_id", "-created_at", "-id"
    ):
        latest.setdefault(signature.artifact_id, signature)
    written: dict[tuple[str, int], str] = {}
    for version in context.scope.versions:
        found = latest.get(version.model_artifact_id or 0)
        if found is None:
            continue
        name = f"model/{version.registered_model.name}/{version.version}/model.sig"
        context.out.write(name, bytes(found.bundle))
        written[(version.registered_model.name, version.version)] = name
    return written


# --- the governance log ----------------------------------------------------------------------


def _write_log(
    context: _Context, attestation_digests: list[str]
) -> tuple[LogFacts, dict[str, int]]:
    out, checkpoint = context.out, context.checkpoint
    size = checkpoint.tree_size
    condition = collect.log_condition(context.scope, attestation_digests)
    indexes: list[int] = []
    types: Counter[str] = Counter()
    context.progress("log", 0, 1)
    with out.stream("log/entries.jsonl") as entries:
        for index, event_type, entry in collect.log_rows(condition, size):
            entries.write(entry + b"\n")
            indexes.append(index)
            types[event_type] += 1
    reader = DatabaseNodeReader()
    with out.stream("log/inclusion-proofs.jsonl") as proofs:
        for offset in range(0, len(indexes), PROOF_BATCH):
            batch = indexes[offset : offset + PROOF_BATCH]
            for index, path in zip(batch, inclusion_proofs(batch, size, reader), strict=True):
                line = {"index": index, "tree_size": size, "hashes": [h.hex() for h in path]}
                proofs.write(json.dumps(line, separators=(",", ":")).encode() + b"\n")
            context.progress("log", offset + len(batch), len(indexes))
    out.write("log/checkpoint.txt", checkpoint.note.encode())
    previous = _previous_bundle(context.bundle)
    consistency: dict[str, Any] = {
        "previous_bundle": None,
        "previous_checkpoint": None,
        "first": None,
        "second": size,
        "hashes": [],
    }
    if previous is not None and previous.checkpoint is not None:
        first = previous.checkpoint.tree_size
        consistency.update(
            previous_bundle=previous.pk,
            previous_checkpoint=previous.checkpoint.note,
            first=first,
            hashes=[h.hex() for h in consistency_proof(first, size, reader)],
        )
    out.write("log/consistency-proof.json", pretty_json(consistency))
    verification = (
        LogVerification.objects.filter(tree_size__lte=size).order_by("-finished_at", "-id").first()
    )
    facts: LogFacts = {
        "origin": settings.LOG_ORIGIN,
        "tree_size": size,
        "root_hash": bytes(checkpoint.root_hash).hex(),
        "checkpoint_issued_at": format_time(checkpoint.issued_at),
        "entries": len(indexes),
        "first_index": indexes[0] if indexes else None,
        "last_index": indexes[-1] if indexes else None,
        "previous_bundle": consistency["previous_bundle"],
        "previous_tree_size": consistency["first"],
        "last_verification": (
            {
                "finished_at": format_time(verification.finished_at),
                "ok": verification.ok,
                "tree_size": verification.tree_size,
            }
            if verification is not None
            else None
        ),
    }
    return facts, dict(sorted(types.items()))


def _previous_bundle(bundle: EvidenceBundle) -> EvidenceBundle | None:
    """The last bundle built before this one for the same scope, with an older checkpoint."""
    assert bundle.checkpoint is not None  # noqa: S101
    return (
        EvidenceBundle.objects.filter(
            scope=bundle.scope,
            registered_model=bundle.registered_model,
            version=bundle.version,
            pk__lt=bundle.pk,
            checkpoint__tree_size__lte=bundle.checkpoint.tree_size,
            sha256__gt="",
        )
        .select_related("checkpoint")
        .order_by("-pk")
        .first()
    )


# --- keys -----------------------------------------------------------------------------------


def _write_keys(context: _Context, signer_ids: set[int], rows: list[AttestationFacts]) -> None:
    out = context.out
    registry = [
        {
            "keyid": key.key_id,
            "scheme": key.scheme,
            "public_pem": key.public_pem,
            "retired": key.retired_at is not None,
        }
        for key in SigningKey.objects.order_by("created_at", "key_id")
    ]
    out.write("keys/registry-keys.json", pretty_json(registry))
    for key in registry:
        out.write(f"keys/{key['keyid']}.pem", str(key["public_pem"]).encode())
    signers = [
        {
            "name": signer.name,
            "kind": signer.kind,
            "keyid": signer.key_id,
            "scheme": (signer.public_key or {}).get("scheme", ""),
            "public_pem": _public_pem(signer),
            "identity": signer.identity,
            "issuer": signer.issuer,
            "predicate_types": list(signer.predicate_types),
        }
        for signer in TrustedSigner.objects.filter(pk__in=signer_ids).order_by("name")
    ]
    out.write("keys/trusted-signers.json", pretty_json(signers))
    out.write("keys/log-key.vkey", f"{context.checkpoint.key.verifier_key}\n".encode())
    if any(row["format"] == "sigstore" for row in rows) and settings.SIGSTORE_TRUSTED_ROOT:
        out.write(
            "keys/sigstore-trusted-root.json", Path(settings.SIGSTORE_TRUSTED_ROOT).read_bytes()
        )


def _public_pem(signer: TrustedSigner) -> str:
    if not signer.public_key:
        return ""
    from provenance.attestation_verify import public_pem  # noqa: PLC0415

    return public_pem(signer.public_key).decode()


# --- facts as files --------------------------------------------------------------------------


def _write_json(out: BundleZip, facts: EvidenceFacts) -> None:
    out.write("json/bundle.json", pretty_json(facts["bundle"]))
    out.write(
        "json/inventory.json",
        pretty_json({"models": facts["models"], "lineage": facts["lineage"]}),
    )
    out.write("json/versions.json", pretty_json(facts["versions"]))
    out.write("json/datasets.json", pretty_json(facts["datasets"]))
    out.write("json/approvals.json", pretty_json(facts["promotions"]))
    out.write("json/alias-history.json", pretty_json(facts["alias_history"]))
    out.write("json/incidents.json", pretty_json(facts["incidents"]))
    out.write(
        "json/log-summary.json",
        pretty_json({"log": facts["log"], "event_counts": facts["event_counts"]}),
    )


def _write_renderings(out: BundleZip, facts: EvidenceFacts) -> None:
    # Imported here: WeasyPrint is heavy, and web processes import this module too.
    from compliance.evidence.mlbom import ml_bom, model_card  # noqa: PLC0415
    from compliance.evidence.oscal import assessment_documents  # noqa: PLC0415
    from compliance.evidence.report import render_html, render_pdf  # noqa: PLC0415

    out.write("model/ml-bom.cdx.json", ml_bom(facts))
    out.write("model/model-card.md", model_card(facts).encode())
    html = render_html(facts)
    out.write("report/evidence-report.html", html.encode())
    out.write("report/evidence-report.pdf", render_pdf(html, facts))
    files = {name: record.sha256 for name, record in out.files.items()}
    plan, results = assessment_documents(facts, files)
    out.write("oscal/assessment-plan.json", plan)
    out.write("oscal/assessment-results.json", results)


# --- the manifest -----------------------------------------------------------------------------


def manifest_document(facts: EvidenceFacts, files: dict[str, FileRecord]) -> dict[str, Any]:
    return {
        "_type": MANIFEST_TYPE,
        "bundle": facts["bundle"],
        "files": [
            {
                "path": name,
                "sha256": record.sha256,
                "size": record.size,
                "mediaType": record.media_type,
            }
            for name, record in sorted(files.items())
        ],
    }


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE's pre-authentication encoding: what the signature covers."""
    kind = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def _write_manifest(context: _Context, facts: EvidenceFacts) -> None:
    out = context.out
    manifest = canonical_json(manifest_document(facts, out.files))
    key = SigningKey.objects.filter(retired_at__isnull=True).order_by("-created_at").first()
    if key is None:
        raise RuntimeError("the registry has no active signing key")
    signature = signing_keys.sign_deterministic(key.key_id, pae(MANIFEST_PAYLOAD_TYPE, manifest))
    envelope = {
        "payload": base64.b64encode(manifest).decode(),
        "payloadType": MANIFEST_PAYLOAD_TYPE,
        "signatures": [{"keyid": key.key_id, "sig": base64.b64encode(signature).decode()}],
    }
    out.write("manifest.json", manifest)
    out.write("manifest.json.dsse", canonical_json(envelope))
    if settings.EVIDENCE_TSA_URL:
        from compliance.evidence.timestamp import timestamp_token  # noqa: PLC0415

        out.write("manifest.json.tsr", timestamp_token(manifest))


def readme(facts: EvidenceFacts) -> str:
    bundle = facts["bundle"]
    log = facts["log"]
    versions: list[VersionFacts] = facts["versions"]
    lines = [
        f"Evidence bundle #{bundle['id']}: {bundle['title']}",
        "=" * 72,
        "",
        f"Generated {bundle['generated_at']} by {bundle['generated_by']}",
        f"at {bundle['registry_url']} (SecMLOps Registry).",
        f"Scope: {bundle['scope']}"
        + (
            f", period {bundle['period_start']} to {bundle['period_end']}"
            if bundle["period_start"]
            else ""
        ),
        f"Model versions: {len(versions)}; attestations: {len(facts['attestations'])}; "
        f"governance-log entries: {log['entries']} (checkpoint at tree size {log['tree_size']}).",
        "",
        "What is inside",
        "--------------",
        "report/       the evidence report (PDF/A-3b and HTML), along EU AI Act Annex IV",
        "json/         the same facts, machine-readable",
        "oscal/        OSCAL assessment plan and results for the control catalogue",
        "model/        CycloneDX ML-BOM, model card, and each version's model.sig",
        "attestations/ every signed attestation, verbatim (one DSSE envelope or Sigstore bundle",
        "              per .intoto.jsonl file), and index.json",
        "log/          governance-log entries, the signed checkpoint, inclusion proofs for every",
        "              entry and a consistency proof from the previous bundle's checkpoint",
        "keys/         the public keys needed to check all of the above",
        "manifest.json every file's sha256, size and media type; manifest.json.dsse signs it",
        "",
        "How to verify",
        "-------------",
        "Offline, with Python 3 and the `cryptography` package only:",
        "",
        "    python3 -m pip install cryptography",
        "    python3 verify.py",
        "",
        "verify.py checks the manifest's signature, every file's hash and that no file was",
        "added or removed, every attestation's signature and subjects, the checkpoint's",
        "signature and every log proof. It exits 0 when everything holds, and otherwise 1,",
        "naming the first file that failed.",
        "",
        "Compare the registry key fingerprint in keys/registry-keys.json with the one the",
        "organisation publishes (GET /api/v1/keys on the registry): a forger would ship their",
        "own key. docs/evidence.md in the registry's documentation describes every format.",
        "",
    ]
    return "\n".join(lines)
