"""``manage.py verify_evidence``: the bundle's own verifier, run from the registry."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from tests.compliance.evidence.bundle_factory import EvidenceBundleFactory, zip_bundle


@pytest.fixture(scope="module")
def factory(tmp_path_factory: pytest.TempPathFactory) -> EvidenceBundleFactory:
    return EvidenceBundleFactory(tmp_path_factory.mktemp("factory"))


@pytest.fixture
def bundle(factory: EvidenceBundleFactory, tmp_path: Path) -> Path:
    return factory.seal(tmp_path / "bundle")


def test_a_good_zip_verifies_and_prints_each_check(bundle: Path, tmp_path: Path) -> None:
    out = io.StringIO()

    call_command("verify_evidence", str(zip_bundle(bundle, tmp_path / "e.zip")), stdout=out)

    lines = out.getvalue().splitlines()
    assert lines[0].startswith("ok   manifest signature by key ")
    assert any(line.startswith("ok   log/entries.jsonl: all 5 entries") for line in lines)
    assert lines[-1].startswith("VERIFIED: all ")


def test_a_tampered_zip_fails_naming_the_file(bundle: Path, tmp_path: Path) -> None:
    path = bundle / "json" / "inventory.json"
    path.write_bytes(path.read_bytes().replace(b"fraud", b"fraul"))
    out = io.StringIO()

    with pytest.raises(CommandError, match=r"json/inventory\.json: sha256 differs") as raised:
        call_command("verify_evidence", str(zip_bundle(bundle, tmp_path / "e.zip")), stdout=out)

    assert raised.value.returncode == 1
    assert "FAIL json/inventory.json: sha256 differs from the manifest" in out.getvalue()


def test_a_missing_bundle_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="no evidence bundle") as raised:
        call_command("verify_evidence", str(tmp_path / "absent.zip"), stdout=io.StringIO())

    assert raised.value.returncode == 2
