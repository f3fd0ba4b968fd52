"""The standalone bundle verifier (``verify.py``): a good bundle passes, and every kind of
tampering fails naming the file at fault.

Bundles are synthetic but real: real keys, DSSE signatures, a model_signing ``model.sig``, a
Sigstore-shaped certificate chain, a signed C2SP checkpoint and RFC 9162 proofs
(``bundle_factory``). "Resealed" tampering re-signs the manifest with the genuine registry key
(an insider, or a builder bug) so that the check behind the manifest is the one that must catch it.
"""

from __future__ import annotations

import ast
import base64
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
import rfc8785
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from hypothesis import given
from hypothesis import strategies as st
from securesystemslib.signer import CryptoSigner  # type: ignore[attr-defined]

from compliance.evidence import verifier
from provenance import merkle
from provenance.attestation_verify import public_pem
from provenance.signed_note import NoteSigner
from tests.compliance.evidence.bundle_factory import (
    APPROVAL_PREDICATE,
    DATASET_DIGEST,
    LOG_ORIGIN,
    MODEL_DIGEST,
    SLSA_PREDICATE,
    EvidenceBundleFactory,
    MerkleLog,
    SigstoreIdentity,
    dsse_envelope,
    dsse_sign,
    jsonl,
    log_entry,
    statement,
    subject,
    timestamp_response,
    zip_bundle,
)

REGISTRY_ROW, PIPELINE_ROW, MODEL_SIG_ROW, SIGSTORE_ROW = range(4)


@pytest.fixture(scope="module")
def factory(tmp_path_factory: pytest.TempPathFactory) -> EvidenceBundleFactory:
    return EvidenceBundleFactory(tmp_path_factory.mktemp("factory"))


@pytest.fixture
def bundle(factory: EvidenceBundleFactory, tmp_path: Path) -> Path:
    return factory.seal(tmp_path / "bundle")


def run(source: Path) -> verifier.Report:
    return verifier.verify(source, out=io.StringIO())


def failed_files(report: verifier.Report) -> list[str]:
    return [failure.file for failure in report.failures]


def assert_fails_naming(report: verifier.Report, file: str, reason: str = "") -> None:
    assert not report.passed
    assert file in failed_files(report), report.lines
    reasons = [failure.reason for failure in report.failures if failure.file == file]
    assert any(reason in text for text in reasons), reasons


def attestation_file(factory: EvidenceBundleFactory, row: int) -> str:
    return str(factory.attestations[row][1]["file"])


def with_envelope(
    factory: EvidenceBundleFactory, row: int, envelope: bytes, **changes: Any
) -> list[tuple[bytes, dict[str, Any]]]:
    """The factory's attestations with one envelope replaced under the *same* index row."""
    attestations = list(factory.attestations)
    attestations[row] = (envelope, {**attestations[row][1], **changes})
    return attestations


# --------------------------------------------------------------------------
# A good bundle
# --------------------------------------------------------------------------


class TestGoodBundle:
    def test_directory_passes_and_prints_each_check(
        self, factory: EvidenceBundleFactory, bundle: Path
    ) -> None:
        out = io.StringIO()

        report = verifier.verify(bundle, out=out)

        assert report.passed, report.lines
        assert out.getvalue() == "".join(line + "\n" for line in report.lines)
        registry_keyid = factory.registry.public_key.keyid
        assert report.lines[0] == f"ok   manifest signature by key {registry_keyid}"
        oks = [line for line in report.lines if line.startswith("ok   ")]
        for row in range(4):
            assert any(attestation_file(factory, row) in line for line in oks)
        for expected in (
            "all 18 listed files have their size and sha256",
            "model/fraud-detector/3/model.sig: model_signing signature",
            "log/checkpoint.txt signed by log key",
            "log/entries.jsonl: all 5 entries are in the checkpoint's tree",
            "log/consistency-proof.json: bundle 41's checkpoint (size 5) is a prefix",
        ):
            assert any(expected in line for line in oks), expected
        assert any(line.startswith("note Sigstore bundles: their Rekor") for line in report.lines)
        assert report.summary().startswith("VERIFIED")

    def test_zip_is_read_in_place(self, bundle: Path, tmp_path: Path) -> None:
        archive = zip_bundle(bundle, tmp_path / "evidence.zip")
        assert any(name.endswith("/") for name in zipfile.ZipFile(archive).namelist())

        report = run(archive)

        assert report.passed, report.lines
        assert not (tmp_path / "evidence").exists()

    def test_timestamp_token_is_matched_to_the_manifest(
        self, factory: EvidenceBundleFactory, tmp_path: Path
    ) -> None:
        bundle = factory.seal(tmp_path / "bundle", timestamp=True)

        report = run(bundle)

        assert report.passed, report.lines
        assert any("manifest.json.tsr: RFC 3161 token" in line for line in report.lines)
        assert any(line.startswith("note the TSA's signature") for line in report.lines)

    def test_a_signature_by_a_retired_registry_key_still_verifies(
        self, factory: EvidenceBundleFactory, tmp_path: Path
    ) -> None:
        bundle = factory.seal(tmp_path / "bundle", manifest_signer=factory.retired_registry)

        report = run(bundle)

        assert report.passed, report.lines
        assert report.lines[0].endswith("(a retired key)")

    def test_first_bundle_for_a_scope_has_no_consistency_proof(
        self, factory: EvidenceBundleFactory, tmp_path: Path
    ) -> None:
        contents = factory.contents()
        contents["log/consistency-proof.json"] = rfc8785.dumps(
            dict.fromkeys(("previous_bundle", "previous_checkpoint", "first", "second", "hashes"))
        )

        report = run(factory.seal(tmp_path / "bundle", contents))

        assert report.passed, report.lines
        assert any("first bundle for this scope" in line for line in report.lines)


# --------------------------------------------------------------------------
# One flipped byte, in every kind of file
# --------------------------------------------------------------------------

FLIPPED_FILES = [
    "manifest.json",
    "manifest.json.dsse",
    "README.txt",
    "verify.py",
    "json/inventory.json",
    "report/evidence-report.html",
    "model/fraud-detector/3/model.sig",
    "attestations/index.json",
    "log/entries.jsonl",
    "log/checkpoint.txt",
    "log/inclusion-proofs.jsonl",
    "log/consistency-proof.json",
    "keys/registry-keys.json",
    "keys/trusted-signers.json",
    "keys/log-key.vkey",
    "keys/sigstore-trusted-root.json",
]


def flip_byte(path: Path, where: float) -> None:
    data = bytearray(path.read_bytes())
    position = min(int(len(data) * where), len(data) - 2)
    data[position] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("where", [0.0, 0.5, 0.99])
@pytest.mark.parametrize("name", [*FLIPPED_FILES, *(f"attestation:{row}" for row in range(4))])
def test_one_flipped_byte_fails_naming_the_file(
    factory: EvidenceBundleFactory, bundle: Path, name: str, where: float
) -> None:
    if name.startswith("attestation:"):
        name = attestation_file(factory, int(name.partition(":")[2]))
    flip_byte(bundle / name, where)

    report = run(bundle)

    assert_fails_naming(report, name)


def test_a_flipped_byte_fails_in_a_zip_too(bundle: Path, tmp_path: Path) -> None:
    flip_byte(bundle / "log/entries.jsonl", 0.5)

    report = run(zip_bundle(bundle, tmp_path / "evidence.zip"))

    assert_fails_naming(report, "log/entries.jsonl", "sha256 differs")


# --------------------------------------------------------------------------
# Files added, removed, or outside the bundle
# --------------------------------------------------------------------------


class TestFileSet:
    def test_an_added_file_fails(self, bundle: Path) -> None:
        (bundle / "json" / "extra.json").write_text("{}")

        assert_fails_naming(run(bundle), "json/extra.json", "not in the manifest")

    def test_a_removed_file_fails(self, bundle: Path) -> None:
        (bundle / "json" / "inventory.json").unlink()

        assert_fails_naming(run(bundle), "json/inventory.json", "removed")

    def test_a_file_added_to_the_zip_fails(self, bundle: Path, tmp_path: Path) -> None:
        archive = zip_bundle(bundle, tmp_path / "e.zip", extra={"json/later.json": b"{}"})

        assert_fails_naming(run(archive), "json/later.json", "not in the manifest")

    @pytest.mark.parametrize("name", ["../escape.txt", "/etc/passwd", "json/../../x"])
    def test_a_zip_member_outside_the_bundle_fails(
        self, bundle: Path, tmp_path: Path, name: str
    ) -> None:
        archive = zip_bundle(bundle, tmp_path / "e.zip", extra={name: b"x"})

        assert_fails_naming(run(archive), name, "escapes the bundle")

    def test_a_name_twice_in_the_zip_fails(self, bundle: Path, tmp_path: Path) -> None:
        with pytest.warns(UserWarning, match="Duplicate name"):
            archive = zip_bundle(bundle, tmp_path / "e.zip", extra={"README.txt": b"forged"})

        assert_fails_naming(run(archive), "README.txt", "more than once")

    def test_a_symbolic_link_fails(self, bundle: Path) -> None:
        (bundle / "json" / "link.json").symlink_to("/etc/hostname")

        assert_fails_naming(run(bundle), "json/link.json")

    @pytest.mark.parametrize("path", ["../outside.txt", "/abs.txt", "a/./b.txt"])
    def test_a_manifest_path_outside_the_bundle_fails(
        self, factory: EvidenceBundleFactory, tmp_path: Path, path: str
    ) -> None:
        manifest = json.loads(factory.manifest(factory.contents()))
        manifest["files"].insert(0, {**manifest["files"][0], "path": path})

        bundle = factory.seal(tmp_path / "b", manifest=rfc8785.dumps(manifest))

        assert_fails_naming(run(bundle), "manifest.json", "unsafe")


# --------------------------------------------------------------------------
# The manifest and its signature
# --------------------------------------------------------------------------


class TestManifest:
    def test_resigned_by_an_unknown_key_fails(
        self, factory: EvidenceBundleFactory, tmp_path: Path
    ) -> None:
        forger = CryptoSigner.generate_ecdsa()

        report = run(factory.seal(tmp_path / "b", manifest_signer=forger))

        assert_fails_naming(report, "manifest.json.dsse", "no signature verifies")
        assert report.first_failure == report.failures[0]
        assert report.failures[0].file == "manifest.json.dsse"

    def test_a_forgery_under_the_registry_keyid_fails(
        self, factory: EvidenceBundleFactory, tmp_path: Path
    ) -> None:
        bundle = factory.seal(tmp_path / "b", manifest_signer=CryptoSigner.generate_ecdsa())
        envelope = json.loads((bundle / "manifest.json.dsse").read_bytes())
        envelope["signatures"][0]["keyid"] = factory.registry.public_key.keyid
        (bundle / "manifest.json.dsse").write_bytes(rfc8785.dumps(envelope))

        assert_fails_naming(run(bundle), "manifest.json.dsse", "does not verify")

    def test_a_forger_shipping_their_own_key_under_the_registry_keyid_fails(
        self, factory: EvidenceBundleFactory, tmp_path: Path
    ) -> None:
        forger = CryptoSigner.generate_ecdsa()
        contents = factory.contents()
        keys = json.loads(contents["keys/registry-keys.json"])
        keys[0]["public_pem"] = public_pem(forger.public_key.to_dict()).decode()
        contents["keys/registry-keys.json"] = rfc8785.dumps(keys)

        report = run(factory.seal(tmp_path / "b", contents))

        assert_fails_naming(report, "keys/registry-keys.json", "is not the id of its key")

    def test_a_wrong_payload_type_fails(self, factory: EvidenceBundleFactory, bundle: Path) -> None:
        manifest = (bundle / "manifest.json").read_bytes()
        envelope = dsse_sign(manifest, factory.registry, "application/json")
        (bundle / "manifest.json.dsse").write_bytes(envelope)

        assert_fails_naming(run(bundle), "manifest.json.dsse", "payload type")

    def test_a_manifest_that_is_not_canonical_fails(
        self, factory: EvidenceBundleFactory, tmp_path: Path
    ) -> None:
        pretty = json.dumps(json.loads(factory.manifest(factory.contents())), indent=2).encode()

        report = run(factory.seal(tmp_path / "b", manifest=pretty))

        assert_fails_naming(report, "manifest.json", "not RFC 8785 canonical")

    def test_unsorted_files_fail(self, factory: EvidenceBundleFactory, tmp_path: Path) -> None:
        manifest = json.loads(factory.manifest(factory.contents()))
        manifest["files"].reverse()

        report = run(factory.seal(tmp_path / "b", manifest=rfc8785.dumps(manifest)))

        assert_fails_naming(report, "manifest.json", "not sorted")

    def test_a_duplicated_file_fails(self, factory: EvidenceBundleFactory, tmp_path: Path) -> None:
        manifest = json.loads(factory.manifest(factory.contents()))
        manifest["files"].insert(0, manifest["files"][0])

        report = run(factory.seal(tmp_path / "b", manifest=rfc8785.dumps(manifest)))

        assert_fails_naming(report, "manifest.json", "without duplicates")

    def test_a_manifest_of_another_type_fails(
        self, factory: EvidenceBundleFactory, tmp_path: Path
    ) -> None:
        manifest = json.loads(factory.manifest(factory.contents()))
        manifest["_type"] = "https://example.org/other"

        report = run(factory.seal(tmp_path / "b", manifest=rfc8785.dumps(manifest)))

        assert_fails_naming(report, "manifest.json", "is not a https://secmlops.dev")

    def test_a_timestamp_over_something_else_fails(self, bundle: Path) -> None:
        (bundle / "manifest.json.tsr").write_bytes(timestamp_response(b"another manifest"))

        assert_fails_naming(run(bundle), "manifest.json.tsr", "different sha256")

    def test_a_timestamp_that_is_not_a_token_fails(self, bundle: Path) -> None:
        (bundle / "manifest.json.tsr").write_bytes(b"\x30\x03\x02\x01\x00")

        assert_fails_naming(run(bundle), "manifest.json.tsr")


# --------------------------------------------------------------------------
# Attestations (resealed: the manifest is genuine, the attestation is not)
# --------------------------------------------------------------------------


class TestAttestations:
    def seal(
        self, factory: EvidenceBundleFactory, tmp_path: Path, attestations: Any
    ) -> verifier.Report:
        return run(factory.seal(tmp_path / "b", factory.contents(attestations)))

    def test_swapped_for_one_signed_by_an_unknown_key(
        self, factory: EvidenceBundleFactory, tmp_path: Path
    ) -> None:
        forged = dsse_envelope(
            statement(SLSA_PREDICATE, pipeline_subjects()), CryptoSigner.generate_ed25519()
        )

        report = self.seal(factory, tmp_path, with_envelope(factory, PIPELINE_ROW, forged))

        assert_fails_naming(report, attestation_file(factory, PIPELINE_ROW), "no signature")

    def test_swapped_for_one_signed_by_another_trusted_key(
        self, factory: EvidenceBundleFactory, tmp_path: Path
    ) -> None:
        """Validly signed by the registry, but the index says the pipeline signed it."""
        other = dsse_envelope(statement(SLSA_PREDICATE, pipeline_subjects()), factory.registry)

        report = self.seal(factory, tmp_path, with_envelope(factory, PIPELINE_ROW, other))

        assert_fails_naming(report, attestation_file(factory, PIPELINE_ROW), "no signature")

    def test_swapped_for_one_with_other_subjects(
        self, factory: EvidenceBundleFactory, tmp_path: Path
    ) -> None:
        other = dsse_envelope(
            statement(SLSA_PREDICATE, [subject("fraud-detector", "ee" * 32)]), factory.pipeline
        )

        report = self.seal(factory, tmp_path, with_envelope(factory, PIPELINE_ROW, other))

        assert_fails_naming(report, attestation_file(factory, PIPELINE_ROW), "subjects differ")

    def test_index_claiming_another_predicate_type(
        self, factory: EvidenceBundleFactory, tmp_path: Path
    ) -> None:
        envelope = factory.attestations[REGISTRY_ROW][0]
        attestations = with_envelope(
            factory, REGISTRY_ROW, envelope, predicate_type="https://example.org/other"
        )

        report = self.seal(factory, tmp_path, attestations)

        assert_fails_naming(report, attestation_file(factory, REGISTRY_ROW), "predicate type")

    def test_file_name_not_the_envelope_digest(
        self, factory: EvidenceBundleFactory, tmp_path: Path
    ) -> None:
        envelope = factory.attestations[REGISTRY_ROW][0]
        attestations = with_envelope(factory, REGISTRY_ROW, envelope, envelope_sha256="0" * 64)

        report = self.seal(factory, tmp_path, attestations)

        assert_fails_naming(report, attestation_file(factory, REGISTRY_ROW), "file name")

    def test_attestation_missing_from_the_index(
        self, factory: EvidenceBundleFactory, tmp_path: Path
    ) -> None:
        contents = factory.contents(factory.attestations[1:])
        stray = attestation_file(factory, 0)
        contents[stray] = factory.attestations[0][0]

        report = run(factory.seal(tmp_path / "b", contents))

        assert_fails_naming(report, stray, "not listed in attestations/index.json")

    def test_an_envelope_on_several_lines(
        self, factory: EvidenceBundleFactory, tmp_path: Path
    ) -> None:
        contents = factory.contents()
        name = attestation_file(factory, REGISTRY_ROW)
        contents[name] = json.dumps(json.loads(contents[name]), indent=1).encode()

        report = run(factory.seal(tmp_path / "b", contents))

        assert_fails_naming(report, name, "more than one line")

    def test_model_sig_with_its_signature_replaced(
        self, factory: EvidenceBundleFactory, tmp_path: Path
    ) -> None:
        document = json.loads(factory.model_sig)
        forged = dsse_envelope(factory.model_sig_statement(), CryptoSigner.generate_ecdsa())
        document["dsseEnvelope"]["signatures"] = json.loads(forged)["signatures"]

        report = self.seal(
            factory, tmp_path, with_envelope(factory, MODEL_SIG_ROW, rfc8785.dumps(document))
        )

        assert_fails_naming(report, attestation_file(factory, MODEL_SIG_ROW), "no signature")

    def test_sigstore_certificate_from_an_untrusted_ca(
        self, factory: EvidenceBundleFactory, tmp_path: Path
    ) -> None:
        rogue = SigstoreIdentity.issue().bundle(statement(SLSA_PREDICATE, model_subjects()))

        report = self.seal(factory, tmp_path, with_envelope(factory, SIGSTORE_ROW, rogue))

        assert_fails_naming(
            report, attestation_file(factory, SIGSTORE_ROW), "not issued by a CA in keys/"
        )

    def test_sigstore_certificate_for_another_identity(
        self, factory: EvidenceBundleFactory, tmp_path: Path
    ) -> None:
        """Same trusted CA, but issued to a workflow that is not the trusted signer."""
        genuine = factory.sigstore
        other = SigstoreIdentity.issue(identity="https://github.com/evil/repo/x.yml@refs/heads/x")
        impostor = SigstoreIdentity(genuine.ca_certificate, other.leaf_key, other.leaf_certificate)
        contents = factory.contents(
            with_envelope(
                factory,
                SIGSTORE_ROW,
                impostor.bundle(statement(SLSA_PREDICATE, model_subjects())),
            )
        )
        # the impostor's CA is what the bundle now trusts; only the identity is wrong
        contents["keys/sigstore-trusted-root.json"] = other.trusted_root()

        report = run(factory.seal(tmp_path / "b", contents))

        assert_fails_naming(report, attestation_file(factory, SIGSTORE_ROW), "is not for")

    def test_sigstore_dsse_signature_not_by_the_certificate(
        self, factory: EvidenceBundleFactory, tmp_path: Path
    ) -> None:
        document = json.loads(factory.attestations[SIGSTORE_ROW][0])
        other = SigstoreIdentity.issue().bundle(statement(SLSA_PREDICATE, model_subjects()))
        document["dsseEnvelope"] = json.loads(other)["dsseEnvelope"]

        report = self.seal(
            factory, tmp_path, with_envelope(factory, SIGSTORE_ROW, rfc8785.dumps(document))
        )

        assert_fails_naming(report, attestation_file(factory, SIGSTORE_ROW), "no signature")

    def test_registry_attestation_for_another_model(
        self, factory: EvidenceBundleFactory, tmp_path: Path
    ) -> None:
        other = dsse_envelope(
            statement(APPROVAL_PREDICATE, [subject("credit-scorer", MODEL_DIGEST)]),
            factory.registry,
        )

        report = self.seal(factory, tmp_path, with_envelope(factory, REGISTRY_ROW, other))

        assert_fails_naming(report, attestation_file(factory, REGISTRY_ROW), "subjects differ")


def pipeline_subjects() -> list[dict[str, Any]]:
    return [subject("fraud-detector", MODEL_DIGEST), subject("transactions-2026q1", DATASET_DIGEST)]


def model_subjects() -> list[dict[str, Any]]:
    return [subject("fraud-detector", MODEL_DIGEST)]


# --------------------------------------------------------------------------
# The log
# --------------------------------------------------------------------------


class TestLog:
    def test_inclusion_proof_line_for_another_index(
        self, factory: EvidenceBundleFactory, tmp_path: Path
    ) -> None:
        contents = factory.contents()
        proofs = [factory.log.inclusion(i) for i in factory.ENTRY_INDEXES]
        proofs[2] = factory.log.inclusion(5)
        contents["log/inclusion-proofs.jsonl"] = jsonl(proofs)

        report = run(factory.seal(tmp_path / "b", contents))

        assert_fails_naming(report, "log/inclusion-proofs.jsonl", "proof for entry 4")

    def test_inclusion_path_of_another_index(
        self, factory: EvidenceBundleFactory, tmp_path: Path
    ) -> None:
        contents = factory.contents()
        proofs = [factory.log.inclusion(i) for i in factory.ENTRY_INDEXES]
        proofs[2] = {**proofs[2], "hashes": factory.log.inclusion(5)["hashes"]}
        contents["log/inclusion-proofs.jsonl"] = jsonl(proofs)

        report = run(factory.seal(tmp_path / "b", contents))

        assert_fails_naming(
            report, "log/entries.jsonl", "entry 4 does not lead to the checkpoint root"
        )

    def test_an_altered_entry_with_its_index_kept(
        self, factory: EvidenceBundleFactory, tmp_path: Path
    ) -> None:
        contents = factory.contents()
        entries = [factory.log.entries[i] for i in factory.ENTRY_INDEXES]
        entries[0] = log_entry(1, event_type="promotion.approved")
        contents["log/entries.jsonl"] = b"".join(entry + b"\n" for entry in entries)

        report = run(factory.seal(tmp_path / "b", contents))

        assert_fails_naming(report, "log/entries.jsonl", "entry 1 does not lead")

    def test_an_entry_without_a_proof(self, factory: EvidenceBundleFactory, tmp_path: Path) -> None:
        contents = factory.contents()
        contents["log/inclusion-proofs.jsonl"] = jsonl(
            [factory.log.inclusion(i) for i in factory.ENTRY_INDEXES[:-1]]
        )

        report = run(factory.seal(tmp_path / "b", contents))

        assert_fails_naming(report, "log/inclusion-proofs.jsonl", "4 proofs for 5 entries")

    def test_entries_out_of_order(self, factory: EvidenceBundleFactory, tmp_path: Path) -> None:
        contents = factory.contents()
        order = (1, 4, 3, 8, 11)
        contents["log/entries.jsonl"] = b"".join(factory.log.entries[i] + b"\n" for i in order)
        contents["log/inclusion-proofs.jsonl"] = jsonl([factory.log.inclusion(i) for i in order])

        report = run(factory.seal(tmp_path / "b", contents))

        assert_fails_naming(report, "log/entries.jsonl", "out of order")

    def test_proofs_against_another_tree_size(
        self, factory: EvidenceBundleFactory, tmp_path: Path
    ) -> None:
        contents = factory.contents()
        contents["log/inclusion-proofs.jsonl"] = jsonl(
            [factory.log.inclusion(i, size=12 if i != 8 else 11) for i in factory.ENTRY_INDEXES]
        )

        report = run(factory.seal(tmp_path / "b", contents))

        assert_fails_naming(report, "log/inclusion-proofs.jsonl", "not against the checkpoint")

    def test_checkpoint_signed_by_another_key(
        self, factory: EvidenceBundleFactory, tmp_path: Path
    ) -> None:
        contents = factory.contents()
        impostor = MerkleLog(factory.log.entries, NoteSigner.generate(LOG_ORIGIN))
        contents["log/checkpoint.txt"] = impostor.checkpoint().encode()

        report = run(factory.seal(tmp_path / "b", contents))

        assert_fails_naming(report, "log/checkpoint.txt", "no signature by the log key")

    def test_checkpoint_of_another_log(
        self, factory: EvidenceBundleFactory, tmp_path: Path
    ) -> None:
        contents = factory.contents()
        facts = {**factory.bundle_facts(), "log_origin": "other.example.org/log"}
        manifest = json.loads(factory.manifest(contents))
        manifest["bundle"] = facts

        report = run(factory.seal(tmp_path / "b", contents, manifest=rfc8785.dumps(manifest)))

        assert_fails_naming(report, "log/checkpoint.txt", "not 'other.example.org/log'")

    def test_consistency_from_a_checkpoint_that_is_not_a_prefix(
        self, factory: EvidenceBundleFactory, tmp_path: Path
    ) -> None:
        """A validly signed earlier checkpoint of a *different* history (a split view)."""
        forked = MerkleLog(
            [log_entry(i, event_type="forked") for i in range(5)], factory.log.signer
        )
        contents = factory.contents()
        contents["log/consistency-proof.json"] = rfc8785.dumps(
            factory.log.consistency(5, forked.checkpoint())
        )

        report = run(factory.seal(tmp_path / "b", contents))

        assert_fails_naming(report, "log/consistency-proof.json", "is not a prefix")

    def test_previous_checkpoint_not_signed_by_the_log(
        self, factory: EvidenceBundleFactory, tmp_path: Path
    ) -> None:
        impostor = MerkleLog(factory.log.entries[:5], NoteSigner.generate(LOG_ORIGIN))
        contents = factory.contents()
        contents["log/consistency-proof.json"] = rfc8785.dumps(
            factory.log.consistency(5, impostor.checkpoint())
        )

        report = run(factory.seal(tmp_path / "b", contents))

        assert_fails_naming(report, "log/consistency-proof.json", "no signature by the log key")

    def test_consistency_sizes_that_are_not_the_checkpoints(
        self, factory: EvidenceBundleFactory, tmp_path: Path
    ) -> None:
        contents = factory.contents()
        proof = factory.log.consistency(5, factory.log.checkpoint(5))
        contents["log/consistency-proof.json"] = rfc8785.dumps({**proof, "first": 4})

        report = run(factory.seal(tmp_path / "b", contents))

        assert_fails_naming(report, "log/consistency-proof.json", "first/second")


# --------------------------------------------------------------------------
# Running verify.py the way an auditor does
# --------------------------------------------------------------------------


def auditor_run(cwd: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    """``python3 -I verify.py``: isolated mode, no PYTHONPATH, outside the repository."""
    env = {
        key: value for key, value in os.environ.items() if not key.startswith(("PYTHON", "DJANGO"))
    }
    return subprocess.run(
        [sys.executable, "-I", "verify.py", *arguments],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


class TestStandalone:
    def test_verify_py_in_an_unpacked_bundle_exits_0(self, bundle: Path, tmp_path: Path) -> None:
        unpacked = shutil.copytree(bundle, tmp_path / "unpacked")

        result = auditor_run(unpacked)

        assert result.returncode == 0, result.stdout + result.stderr
        assert result.stdout.startswith("ok   manifest signature by key ")
        assert result.stdout.rstrip().endswith("checks hold")

    def test_verify_py_on_a_tampered_zip_exits_1_naming_the_file(
        self, bundle: Path, tmp_path: Path
    ) -> None:
        archive = zip_bundle(bundle, tmp_path / "evidence.zip")
        flip_byte(bundle / "README.txt", 0.5)
        tampered = zip_bundle(bundle, tmp_path / "tampered.zip")
        (tmp_path / "verify.py").write_bytes((bundle / "verify.py").read_bytes())

        assert auditor_run(tmp_path, str(archive)).returncode == 0
        result = auditor_run(tmp_path, str(tampered))

        assert result.returncode == 1
        assert "FAIL README.txt: sha256 differs from the manifest" in result.stdout
        assert "first: README.txt" in result.stdout.splitlines()[-1]

    def test_verify_py_without_a_bundle_exits_2(self, bundle: Path) -> None:
        result = auditor_run(bundle, str(bundle / "nowhere.zip"))

        assert result.returncode == 2
        assert "no evidence bundle" in result.stderr

    def test_main_exit_codes(self, bundle: Path, capsys: pytest.CaptureFixture[str]) -> None:
        assert verifier.main([str(bundle)]) == 0
        assert capsys.readouterr().out.splitlines()[-1].startswith("VERIFIED")
        (bundle / "README.txt").write_text("forged")
        assert verifier.main([str(bundle)]) == 1
        assert "first: README.txt: " in capsys.readouterr().out.splitlines()[-1]
        assert verifier.main([str(bundle), "extra"]) == 2
        assert verifier.main(["--help"]) == 2
        assert "usage: python3 verify.py" in capsys.readouterr().err

    def test_verifier_imports_only_the_standard_library_and_cryptography(self) -> None:
        tree = ast.parse(Path(verifier.__file__).read_text())
        imported = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                assert node.level == 0, "relative import"
                imported.add((node.module or "").split(".")[0])

        assert imported - set(sys.stdlib_module_names) == {"cryptography"}
        assert "importlib" not in imported
        assert "__import__" not in Path(verifier.__file__).read_text()


# --------------------------------------------------------------------------
# The verifier's own algorithms agree with the libraries the registry uses
# --------------------------------------------------------------------------


@given(
    st.recursive(
        st.none()
        | st.booleans()
        | st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1)
        | st.floats(allow_nan=False, allow_infinity=False)
        | st.text(),
        lambda children: st.lists(children) | st.dictionaries(st.text(), children),
        max_leaves=20,
    )
)
def test_canonical_json_is_rfc8785(value: Any) -> None:
    assert verifier.canonical_json(value) == rfc8785.dumps(value)


@pytest.mark.parametrize("number", [1e21, 1e-7, 123.456, 0.001, 5e-324, 1.7976931348623157e308])
def test_canonical_numbers(number: float) -> None:
    assert verifier.canonical_json(number) == rfc8785.dumps(number)


@pytest.mark.parametrize("generate", [CryptoSigner.generate_ecdsa, CryptoSigner.generate_ed25519])
def test_key_ids_are_securesystemslib_key_ids(generate: Any) -> None:
    signer = generate()

    key = load_pem_public_key(public_pem(signer.public_key.to_dict()))

    keyid = verifier.securesystemslib_keyid(key, signer.public_key.scheme)

    assert keyid == signer.public_key.keyid


def test_inclusion_and_consistency_agree_with_the_log() -> None:
    store = merkle.MemoryNodeStore()
    leaves = [hashlib.sha256(bytes([i])).digest() for i in range(17)]
    roots = [merkle.EMPTY_ROOT]
    for leaf in leaves:
        store.append(leaf)
        roots.append(store.root())
    for size in range(1, 18):
        for index in range(size):
            proof = merkle.inclusion_proof(index, size, store)
            assert (
                verifier.root_from_inclusion_proof(leaves[index], index, size, proof) == roots[size]
            )
            other_leaf = hashlib.sha256(b"other").digest()
            assert verifier.root_from_inclusion_proof(other_leaf, index, size, proof) != roots[size]
        for first in range(size + 1):
            proof = merkle.consistency_proof(first, size, store)
            assert verifier.consistency_holds(first, size, roots[first], roots[size], proof)
            forked_root = hashlib.sha256(b"fork").digest()
            assert not verifier.consistency_holds(first, size, forked_root, roots[size], proof)


def test_base64_must_be_canonical() -> None:
    assert verifier.b64decode("QQ==", "x", "f") == b"A"
    assert verifier.b64decode("QQ", "x", "f") == b"A"
    with pytest.raises(verifier.CheckFailed, match="not canonical"):
        verifier.b64decode("QR==", "x", "f")
    with pytest.raises(verifier.CheckFailed, match="not valid base64"):
        verifier.b64decode("Q!==", "x", "f")
    assert base64.b64decode("QR==") == b"A"  # which a lenient decoder would have accepted
