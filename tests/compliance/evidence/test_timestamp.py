"""RFC 3161 timestamps over a bundle's manifest, from a local ``openssl ts`` authority."""

from __future__ import annotations

import datetime as dt
import http.server
import io
import shutil
import subprocess
import tempfile
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from django.contrib.auth.models import User
from django.core.files.storage import storages

from compliance.choices import EvidenceStatus
from compliance.evidence.timestamp import TimestampError, timestamp_token
from compliance.models import EvidenceBundle
from registry.models import ModelVersion
from tests.compliance.evidence.test_bundles import build_bundle, verify_bytes

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command"),
]

OPENSSL_CONF = """
[ tsa ]
default_tsa = tsa_config
[ tsa_config ]
serial = {dir}/serial
crypto_device = builtin
default_policy = 1.2.3.4.1
digests = sha256, sha384, sha512
signer_digest = sha256
accuracy = secs:1
ordering = yes
tsa_name = no
ess_cert_id_chain = no
ess_cert_id_alg = sha256
"""


def _certificate(
    subject: str, key: Any, issuer: x509.Certificate | None, issuer_key: Any, *, tsa: bool
) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer.subject if issuer else name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=not tsa, path_length=None), critical=True)
    )
    if tsa:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True
        )
    return builder.sign(issuer_key, hashes.SHA256())


@pytest.fixture(scope="module")
def authority() -> Iterator[dict[str, Path | str]]:
    """A timestamp authority: a CA, a TSA certificate, and ``openssl ts -reply`` behind HTTP."""
    directory = Path(tempfile.mkdtemp(prefix="tsa-"))
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _certificate("Test TSA root", ca_key, None, ca_key, tsa=False)
    tsa_key = ec.generate_private_key(ec.SECP256R1())
    tsa = _certificate("Test TSA", tsa_key, ca, ca_key, tsa=True)
    (directory / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (directory / "tsa.pem").write_bytes(tsa.public_bytes(serialization.Encoding.PEM))
    (directory / "tsa.key").write_bytes(
        tsa_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    (directory / "serial").write_text("01\n")
    (directory / "openssl.cnf").write_text(OPENSSL_CONF.format(dir=directory))
    lock = threading.Lock()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            query = self.rfile.read(int(self.headers["Content-Length"]))
            with lock, tempfile.TemporaryDirectory() as work:
                (Path(work) / "query.tsq").write_bytes(query)
                subprocess.run(
                    [
                        "openssl",
                        "ts",
                        "-reply",
                        "-config",
                        str(directory / "openssl.cnf"),
                        "-queryfile",
                        f"{work}/query.tsq",
                        "-inkey",
                        str(directory / "tsa.key"),
                        "-signer",
                        str(directory / "tsa.pem"),
                        "-out",
                        f"{work}/reply.tsr",
                    ],
                    check=True,
                    capture_output=True,
                )
                reply = (Path(work) / "reply.tsr").read_bytes()
            self.send_response(200)
            self.send_header("Content-Type", "application/timestamp-reply")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield {"url": f"http://127.0.0.1:{server.server_port}/tsr", "dir": directory}
    server.shutdown()
    shutil.rmtree(directory, ignore_errors=True)


def test_the_authority_timestamps_what_it_is_given(
    authority: dict[str, Any], settings: Any
) -> None:
    settings.EVIDENCE_TSA_URL = authority["url"]
    token = timestamp_token(b"manifest bytes")
    assert token[:1] == b"\x30"  # a DER SEQUENCE: the TimeStampResp


def test_a_bundle_carries_a_token_openssl_verifies(
    authority: dict[str, Any],
    settings: Any,
    personas: dict[str, User],
    fraud: ModelVersion,
    tmp_path: Path,
) -> None:
    settings.EVIDENCE_TSA_URL = authority["url"]
    bundle = build_bundle(personas["dave"], scope="model_version", model="fraud", version=1)
    assert bundle.status == EvidenceStatus.READY, bundle.error
    with storages["evidence"].open(bundle.file_name, "rb") as handle:
        data = handle.read()
    archive = zipfile.ZipFile(io.BytesIO(data))
    (tmp_path / "manifest.json").write_bytes(archive.read("manifest.json"))
    (tmp_path / "manifest.json.tsr").write_bytes(archive.read("manifest.json.tsr"))
    checked = subprocess.run(
        [
            "openssl",
            "ts",
            "-verify",
            "-data",
            str(tmp_path / "manifest.json"),
            "-in",
            str(tmp_path / "manifest.json.tsr"),
            "-CAfile",
            str(authority["dir"] / "ca.pem"),
            "-untrusted",
            str(authority["dir"] / "tsa.pem"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert "Verification: OK" in checked.stdout, checked.stdout + checked.stderr
    report = verify_bytes(data, tmp_path)
    assert report.passed, report.lines
    assert any("manifest.json.tsr" in line for line in report.lines)

    def other_manifest(files: dict[str, bytes]) -> None:
        files["manifest.json.tsr"] = timestamp_token(b"another manifest")

    from tests.compliance.evidence.test_bundles import rewrite

    swapped = verify_bytes(rewrite(data, other_manifest), tmp_path, "swapped.zip")
    assert not swapped.passed
    assert "manifest.json.tsr" in swapped.first_failure.file


def test_an_unreachable_authority_fails_the_build_and_keeps_nothing(
    settings: Any, personas: dict[str, User], fraud: ModelVersion, unused_port: int
) -> None:
    settings.EVIDENCE_TSA_URL = f"http://127.0.0.1:{unused_port}/tsr"
    settings.EVIDENCE_TSA_TIMEOUT = 2
    with pytest.raises(TimestampError, match="unreachable"):
        build_bundle(personas["dave"], scope="model_version", model="fraud", version=1)
    bundle = EvidenceBundle.objects.get()
    assert bundle.status == EvidenceStatus.FAILED
    assert "timestamp authority" in bundle.error
    assert bundle.file_name == ""
