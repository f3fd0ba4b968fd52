"""Synthetic evidence bundles with real keys and real signatures, laid out as docs/evidence.md says.

``EvidenceBundleFactory`` generates every key once (registry, a retired registry key, a pipeline
key, a Sigstore CA and leaf, the log's note key) and a 12-entry governance log. ``contents()``
returns every file of a bundle except the manifest trio, as a dict a test may change;
``seal()`` writes them, the RFC 8785 ``manifest.json`` over them and its DSSE signature
(optionally an RFC 3161 token), so a test can produce a bundle that is tampered *and* still
validly sealed, to reach the check behind the manifest.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import rfc8785
from asn1crypto import algos, cms, core, tsp  # type: ignore[import-untyped]
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from securesystemslib.dsse import Envelope
from securesystemslib.signer import CryptoSigner  # type: ignore[attr-defined]

from compliance.evidence import verifier
from provenance import merkle
from provenance.attestation_verify import public_pem
from provenance.model_manifest import sign_model
from provenance.signed_note import NoteSigner, format_checkpoint, sign_note

LOG_ORIGIN = "registry.example.org/governance-log"
IN_TOTO = "application/vnd.in-toto+json"
APPROVAL_PREDICATE = "https://secmlops.dev/attestation/approval/v1"
SLSA_PREDICATE = "https://slsa.dev/provenance/v1"
MODEL_SIGNING_PREDICATE = "https://model_signing/signature/v1.0"
SIGSTORE_IDENTITY = "https://github.com/acme/fraud/.github/workflows/train.yml@refs/heads/main"
SIGSTORE_ISSUER = "https://token.actions.githubusercontent.com"
MODEL_DIGEST = "ab" * 32
DATASET_DIGEST = "cd" * 32


def subject(name: str, digest: str) -> dict[str, Any]:
    return {"name": name, "digest": {"sha256": digest}}


def statement(predicate_type: str, subjects: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": subjects,
        "predicateType": predicate_type,
        "predicate": {"note": "synthetic"},
    }


def dsse_sign(payload: bytes, signer: Any, payload_type: str = IN_TOTO) -> bytes:
    """A DSSE envelope over ``payload`` signed by a securesystemslib signer, as RFC 8785 JSON."""
    envelope = Envelope(payload, payload_type, {})
    envelope.sign(signer)
    return rfc8785.dumps(envelope.to_dict())


def dsse_envelope(document: dict[str, Any], signer: Any) -> bytes:
    """An in-toto statement in a DSSE envelope, as a pipeline or the registry signs it."""
    return dsse_sign(rfc8785.dumps(document), signer)


def sign_pae(private_key: ec.EllipticCurvePrivateKey, payload: bytes) -> str:
    """A DSSE signature made by hand (for the Sigstore leaf key), base64."""
    signature = private_key.sign(verifier.pae(IN_TOTO, payload), ec.ECDSA(hashes.SHA256()))
    return base64.b64encode(signature).decode()


def signer_pem(signer: CryptoSigner) -> str:
    return public_pem(signer.public_key.to_dict()).decode()


@dataclass
class SigstoreIdentity:
    """A stand-in Fulcio: a CA certificate and a leaf certificate it issued for a workflow."""

    ca_certificate: x509.Certificate
    leaf_key: ec.EllipticCurvePrivateKey
    leaf_certificate: x509.Certificate

    @classmethod
    def issue(cls, identity: str = SIGSTORE_IDENTITY, issuer: str = SIGSTORE_ISSUER) -> Any:
        ca_key = ec.generate_private_key(ec.SECP384R1())
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test-fulcio")])
        now = datetime.datetime.now(datetime.UTC)
        ca_certificate = (
            x509.CertificateBuilder()
            .subject_name(ca_name)
            .issuer_name(ca_name)
            .public_key(ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(ca_key, hashes.SHA384())
        )
        leaf_key = ec.generate_private_key(ec.SECP256R1())
        issuer_der = b"\x0c" + bytes([len(issuer)]) + issuer.encode()  # DER UTF8String
        leaf_certificate = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([]))
            .issuer_name(ca_name)
            .public_key(leaf_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(minutes=5))
            .add_extension(
                x509.SubjectAlternativeName([x509.UniformResourceIdentifier(identity)]),
                critical=True,
            )
            .add_extension(
                x509.UnrecognizedExtension(
                    x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.8"), issuer_der
                ),
                critical=False,
            )
            .sign(ca_key, hashes.SHA384())
        )
        return cls(ca_certificate, leaf_key, leaf_certificate)

    def bundle(self, document: dict[str, Any]) -> bytes:
        """A Sigstore bundle v0.3 holding a DSSE envelope signed by the leaf certificate."""
        payload = rfc8785.dumps(document)
        der = self.leaf_certificate.public_bytes(serialization.Encoding.DER)
        return rfc8785.dumps(
            {
                "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
                "verificationMaterial": {
                    "certificate": {"rawBytes": base64.b64encode(der).decode()},
                    "tlogEntries": [],
                },
                "dsseEnvelope": {
                    "payload": base64.b64encode(payload).decode(),
                    "payloadType": IN_TOTO,
                    "signatures": [{"sig": sign_pae(self.leaf_key, payload)}],
                },
            }
        )

    def trusted_root(self) -> bytes:
        der = self.ca_certificate.public_bytes(serialization.Encoding.DER)
        return rfc8785.dumps(
            {
                "mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
                "tlogs": [],
                "certificateAuthorities": [
                    {
                        "subject": {"organization": "test", "commonName": "test-fulcio"},
                        "uri": "https://fulcio.example.org",
                        "certChain": {
                            "certificates": [{"rawBytes": base64.b64encode(der).decode()}]
                        },
                        "validFor": {"start": "2020-01-01T00:00:00Z"},
                    }
                ],
            }
        )


def log_entry(index: int, event_type: str = "attestation.ingested") -> bytes:
    """A governance-log entry as hashed into the tree: RFC 8785 JSON holding its index."""
    return rfc8785.dumps(
        {
            "index": index,
            "type": event_type,
            "actor": {"name": "alice", "roles": ["model_developer"], "user_id": 1},
            "object_type": "model_version",
            "object_id": f"fraud-detector/{index}",
            "occurred_at": f"2026-03-01T10:00:{index:02d}.000000Z",
        }
    )


class MerkleLog:
    """An in-memory governance log (``provenance.merkle.MemoryNodeStore``) and its note key."""

    def __init__(self, entries: list[bytes], signer: NoteSigner, origin: str = LOG_ORIGIN) -> None:
        self.entries = entries
        self.signer = signer
        self.origin = origin
        self.store = merkle.MemoryNodeStore()
        for entry in entries:
            self.store.append_entry(entry)

    @property
    def size(self) -> int:
        return self.store.size

    def checkpoint(self, size: int | None = None) -> str:
        size = self.size if size is None else size
        root = merkle.root_at(size, self.store)
        return sign_note(format_checkpoint(self.origin, size, root), self.signer)

    def inclusion(self, index: int, size: int | None = None) -> dict[str, Any]:
        size = self.size if size is None else size
        hashes_ = merkle.inclusion_proof(index, size, self.store)
        return {"index": index, "tree_size": size, "hashes": [h.hex() for h in hashes_]}

    def consistency(self, first: int, previous_checkpoint: str) -> dict[str, Any]:
        hashes_ = merkle.consistency_proof(first, self.size, self.store)
        return {
            "previous_bundle": 41,
            "previous_checkpoint": previous_checkpoint,
            "first": first,
            "second": self.size,
            "hashes": [h.hex() for h in hashes_],
        }


def jsonl(documents: list[dict[str, Any]]) -> bytes:
    return b"".join(rfc8785.dumps(document) + b"\n" for document in documents)


def timestamp_response(message: bytes) -> bytes:
    """An RFC 3161 TimeStampResp over ``message`` (sha256). Its CMS signature is left out:
    the verifier only reads the message imprint."""
    tst_info = tsp.TSTInfo(
        {
            "version": "v1",
            "policy": "1.2.3.4",
            "message_imprint": {
                "hash_algorithm": algos.DigestAlgorithm({"algorithm": "sha256"}),
                "hashed_message": hashlib.sha256(message).digest(),
            },
            "serial_number": 7,
            "gen_time": datetime.datetime(2026, 3, 1, 12, 0, tzinfo=datetime.UTC),
        }
    )
    signed_data = cms.SignedData(
        {
            "version": "v3",
            "digest_algorithms": [algos.DigestAlgorithm({"algorithm": "sha256"})],
            "encap_content_info": {
                "content_type": "tst_info",
                "content": core.ParsableOctetString(tst_info.dump()),
            },
            "signer_infos": [],
        }
    )
    token = cms.ContentInfo({"content_type": "signed_data", "content": signed_data})
    response = tsp.TimeStampResp({"status": {"status": "granted"}, "time_stamp_token": token})
    return bytes(response.dump())


class EvidenceBundleFactory:
    """Keys, log and attestations of one synthetic bundle for ``fraud-detector`` version 3."""

    ENTRY_INDEXES = (1, 3, 4, 8, 11)
    PREVIOUS_SIZE = 5

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.registry = CryptoSigner.generate_ecdsa()
        self.retired_registry = CryptoSigner.generate_ed25519()
        self.pipeline = CryptoSigner.generate_ed25519()
        self.sigstore = SigstoreIdentity.issue()
        self.log = MerkleLog([log_entry(i) for i in range(12)], NoteSigner.generate(LOG_ORIGIN))
        self.model_sig = self._model_sig()
        self.attestations = self._attestations()

    # -- keys ------------------------------------------------------------------

    def registry_keys(self) -> bytes:
        return rfc8785.dumps(
            [
                {
                    "keyid": signer.public_key.keyid,
                    "scheme": signer.public_key.scheme,
                    "public_pem": signer_pem(signer),
                    "retired": retired,
                }
                for signer, retired in ((self.registry, False), (self.retired_registry, True))
            ]
        )

    def trusted_signers(self) -> bytes:
        return rfc8785.dumps(
            [
                {
                    "name": "ci-pipeline",
                    "kind": "key",
                    "keyid": self.pipeline.public_key.keyid,
                    "scheme": self.pipeline.public_key.scheme,
                    "public_pem": signer_pem(self.pipeline),
                    "identity": "",
                    "issuer": "",
                    "predicate_types": [SLSA_PREDICATE],
                },
                {
                    "name": "github-train",
                    "kind": "sigstore",
                    "keyid": "",
                    "scheme": "",
                    "public_pem": None,
                    "identity": SIGSTORE_IDENTITY,
                    "issuer": SIGSTORE_ISSUER,
                    "predicate_types": [SLSA_PREDICATE],
                },
            ]
        )

    # -- attestations ----------------------------------------------------------

    def _model_sig(self) -> bytes:
        """A real model_signing ``model.sig`` of a tiny model, by the registry key."""
        model_dir = self.workdir / "fraud-detector"
        model_dir.mkdir(parents=True, exist_ok=True)
        (model_dir / "model.pkl").write_bytes(b"weights")
        signature = self.workdir / "model.sig"
        sign_model(model_dir, self.registry.private_bytes, signature)
        return signature.read_bytes()

    def model_sig_statement(self) -> dict[str, Any]:
        envelope = json.loads(self.model_sig)["dsseEnvelope"]
        document: dict[str, Any] = json.loads(base64.b64decode(envelope["payload"]))
        return document

    def _attestations(self) -> list[tuple[bytes, dict[str, Any]]]:
        """(envelope bytes, index row) for each format and signer kind."""
        model = [subject("fraud-detector", MODEL_DIGEST)]
        both = [*model, subject("transactions-2026q1", DATASET_DIGEST)]
        registry_keyid = self.registry.public_key.keyid
        signed = [
            (
                dsse_envelope(statement(APPROVAL_PREDICATE, model), self.registry),
                "dsse",
                APPROVAL_PREDICATE,
                model,
                {"kind": "registry", "keyid": registry_keyid, "name": "registry"},
            ),
            (
                dsse_envelope(statement(SLSA_PREDICATE, both), self.pipeline),
                "dsse",
                SLSA_PREDICATE,
                both,
                {"kind": "key", "keyid": self.pipeline.public_key.keyid, "name": "ci-pipeline"},
            ),
            (
                self.model_sig,
                "model_sig",
                MODEL_SIGNING_PREDICATE,
                self.model_sig_statement()["subject"],
                {"kind": "registry", "keyid": registry_keyid, "name": "registry"},
            ),
            (
                self.sigstore.bundle(statement(SLSA_PREDICATE, model)),
                "sigstore",
                SLSA_PREDICATE,
                model,
                {"kind": "sigstore", "keyid": "", "name": "github-train"},
            ),
        ]
        return [self.index_row(*attestation) for attestation in signed]

    @staticmethod
    def index_row(
        envelope: bytes,
        format_: str,
        predicate_type: str,
        subjects: list[dict[str, Any]],
        signer: dict[str, str],
    ) -> tuple[bytes, dict[str, Any]]:
        digest = hashlib.sha256(envelope).hexdigest()
        row = {
            "file": f"attestations/{digest}.intoto.jsonl",
            "envelope_sha256": digest,
            "format": format_,
            "predicate_type": predicate_type,
            "subjects": subjects,
            "signer": signer,
            "verification_status": "verified",
        }
        return envelope, row

    @staticmethod
    def attestation_files(attestations: list[tuple[bytes, dict[str, Any]]]) -> dict[str, bytes]:
        files = {row["file"]: envelope for envelope, row in attestations}
        files["attestations/index.json"] = rfc8785.dumps([row for _, row in attestations])
        return files

    # -- log ---------------------------------------------------------------------

    def log_files(self) -> dict[str, bytes]:
        previous = self.log.checkpoint(self.PREVIOUS_SIZE)
        return {
            "log/entries.jsonl": b"".join(self.log.entries[i] + b"\n" for i in self.ENTRY_INDEXES),
            "log/checkpoint.txt": self.log.checkpoint().encode(),
            "log/inclusion-proofs.jsonl": jsonl(
                [self.log.inclusion(i) for i in self.ENTRY_INDEXES]
            ),
            "log/consistency-proof.json": rfc8785.dumps(
                self.log.consistency(self.PREVIOUS_SIZE, previous)
            ),
        }

    # -- the bundle ----------------------------------------------------------------

    def bundle_facts(self) -> dict[str, Any]:
        return {
            "id": 42,
            "scope": "model_version",
            "model": "fraud-detector",
            "version": 3,
            "period_start": None,
            "period_end": None,
            "generated_at": "2026-03-01T12:00:00.000000Z",
            "registry_url": "https://registry.example.org",
            "log_origin": LOG_ORIGIN,
        }

    def contents(
        self, attestations: list[tuple[bytes, dict[str, Any]]] | None = None
    ) -> dict[str, bytes]:
        """Every file of the bundle except ``manifest.json`` and its signature/timestamp;
        ``attestations`` (envelope, index row) replace the factory's own."""
        attestations = self.attestations if attestations is None else attestations
        return {
            "README.txt": b"Evidence bundle for fraud-detector 3.\nRun: python3 verify.py\n",
            "verify.py": Path(verifier.__file__).read_bytes(),
            "json/inventory.json": rfc8785.dumps({"models": [{"name": "fraud-detector"}]}),
            "report/evidence-report.html": b"<html><body>Annex IV</body></html>\n",
            "model/fraud-detector/3/model.sig": self.model_sig,
            "keys/registry-keys.json": self.registry_keys(),
            "keys/trusted-signers.json": self.trusted_signers(),
            "keys/log-key.vkey": (self.log.signer.verifier_key + "\n").encode(),
            "keys/sigstore-trusted-root.json": self.sigstore.trusted_root(),
            **self.attestation_files(attestations),
            **self.log_files(),
        }

    def manifest(self, contents: dict[str, bytes]) -> bytes:
        files: list[dict[str, Any]] = [
            {
                "path": path,
                "sha256": hashlib.sha256(data).hexdigest(),
                "size": len(data),
                "mediaType": "application/octet-stream",
            }
            for path, data in sorted(contents.items())
        ]
        return rfc8785.dumps(
            {
                "_type": "https://secmlops.dev/evidence/manifest/v1",
                "bundle": self.bundle_facts(),
                "files": files,
            }
        )

    def seal(
        self,
        directory: Path,
        contents: dict[str, bytes] | None = None,
        *,
        manifest: bytes | None = None,
        manifest_signer: Any = None,
        timestamp: bool = False,
    ) -> Path:
        """Write the bundle into ``directory``: the files, then a manifest over them signed by
        ``manifest_signer`` (default: the registry key)."""
        contents = self.contents() if contents is None else contents
        manifest = self.manifest(contents) if manifest is None else manifest
        files = dict(contents)
        files["manifest.json"] = manifest
        files["manifest.json.dsse"] = dsse_sign(
            manifest,
            manifest_signer or self.registry,
            payload_type="application/vnd.secmlops.evidence-manifest+json",
        )
        if timestamp:
            files["manifest.json.tsr"] = timestamp_response(manifest)
        for path, data in files.items():
            (directory / path).parent.mkdir(parents=True, exist_ok=True)
            (directory / path).write_bytes(data)
        return directory


def zip_bundle(directory: Path, target: Path, *, extra: dict[str, bytes] | None = None) -> Path:
    """Zip a bundle directory (with directory entries, as `zip -r` writes them)."""
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(directory.rglob("*")):
            archive.write(path, path.relative_to(directory).as_posix())
        for name, data in (extra or {}).items():
            archive.writestr(name, data)
    return target
