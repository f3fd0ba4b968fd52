"""What a scan produces: findings, failures, per-file results, the policy and the report.

All are frozen and round-trip through ``to_dict``/``from_dict``; :class:`ScanReport`
also renders the in-toto test-result predicate the registry signs.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata
import json
import math
import pathlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import rfc8785

from provenance.model_scan.enums import (
    _GIB,
    _REPORT_VERSION,
    MODELSCAN,
    PICKLESCAN,
    REGISTRY_SCANNER,
    Format,
    Severity,
    Verdict,
)
from provenance.model_scan.rules import (
    _REGISTRY_VERSION,
    _RULES_DIGEST,
    DEFAULT_ALLOWED_IMPORTS,
    _dotted_prefixes,
)


@dataclass(frozen=True, slots=True)
class Finding:
    """One scanner's report of something that would run on load (``operator``: ``posix.system``)."""

    scanner: str
    severity: Severity
    operator: str
    code: str
    description: str

    def to_dict(self) -> dict[str, str]:
        return {
            "scanner": self.scanner,
            "severity": self.severity.value,
            "operator": self.operator,
            "code": self.code,
            "description": self.description,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Finding:
        return cls(
            str(data["scanner"]),
            Severity(data["severity"]),
            str(data["operator"]),
            str(data["code"]),
            str(data["description"]),
        )


@dataclass(frozen=True, slots=True)
class SkippedScan:
    """A scanner that looked at the file and declined to examine it."""

    scanner: str
    reason: str

    def to_dict(self) -> dict[str, str]:
        return {"scanner": self.scanner, "reason": self.reason}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SkippedScan:
        return cls(str(data["scanner"]), str(data["reason"]))


@dataclass(frozen=True, slots=True)
class ScanFailure:
    """Why a file could not be vouched for; any failure makes the file ``unknown``.

    ``kind``: ``timeout``, ``scanner-error``, ``malformed``, ``size-limit``,
    ``depth-limit``, ``member-limit``, ``unsupported``, ``too-few-scanners`` or
    ``not-a-regular-file``.
    """

    scanner: str
    kind: str
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"scanner": self.scanner, "kind": self.kind, "message": self.message}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ScanFailure:
        return cls(str(data["scanner"]), str(data["kind"]), str(data["message"]))


@dataclass(frozen=True, slots=True)
class ScannerInfo:
    name: str
    version: str

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "version": self.version}


def scanner_versions() -> tuple[ScannerInfo, ...]:
    """The scanners this package runs, with their versions: a change calls for a re-scan."""
    return (
        ScannerInfo(MODELSCAN, importlib.metadata.version("modelscan")),
        ScannerInfo(PICKLESCAN, importlib.metadata.version("picklescan")),
        ScannerInfo(REGISTRY_SCANNER, _REGISTRY_VERSION),
    )


@dataclass(frozen=True, slots=True)
class FileResult:
    """The judgement on one file, or one archive member (``path`` then holds ``!/``)."""

    path: str
    size: int
    format: Format
    verdict: Verdict
    container: str | None = None
    scanners: tuple[str, ...] = ()
    findings: tuple[Finding, ...] = ()
    skipped: tuple[SkippedScan, ...] = ()
    errors: tuple[ScanFailure, ...] = ()

    @property
    def can_execute(self) -> bool:
        return self.format.can_execute

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "container": self.container,
            "size": self.size,
            "format": self.format.value,
            "can_execute": self.can_execute,
            "verdict": self.verdict.value,
            "scanners": list(self.scanners),
            "findings": [item.to_dict() for item in self.findings],
            "skipped": [item.to_dict() for item in self.skipped],
            "errors": [item.to_dict() for item in self.errors],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FileResult:
        container = data.get("container")
        return cls(
            path=str(data["path"]),
            size=int(data["size"]),
            format=Format(data["format"]),
            verdict=Verdict(data["verdict"]),
            container=None if container is None else str(container),
            scanners=tuple(str(name) for name in data["scanners"]),
            findings=tuple(Finding.from_dict(item) for item in data["findings"]),
            skipped=tuple(SkippedScan.from_dict(item) for item in data["skipped"]),
            errors=tuple(ScanFailure.from_dict(item) for item in data["errors"]),
        )


@dataclass(frozen=True, slots=True)
class ScanPolicy:
    """Limits and how strictly to judge what cannot be proven harmless.

    The ``*_verdict`` fields may be ``warning``, ``unknown`` or ``unsafe``, never
    ``clean``; failures (errors, timeouts, limits) are ``unknown`` regardless.
    ``allowed_imports`` replaces the default allowlist: extend it with
    ``DEFAULT_ALLOWED_IMPORTS | {"sklearn.*"}``; denylisted imports stay findings.
    """

    name: str = "strict"
    max_file_size: int = 64 * _GIB
    max_member_size: int = 1 * _GIB
    max_archive_depth: int = 3
    max_archive_members: int = 100_000
    scanner_timeout: float = 300.0
    min_scanners: int = 2
    allowed_imports: frozenset[str] = DEFAULT_ALLOWED_IMPORTS
    medium_finding_verdict: Verdict = Verdict.UNKNOWN
    unrecognised_data_verdict: Verdict = Verdict.UNKNOWN
    unscanned_code_verdict: Verdict = Verdict.UNKNOWN

    def __post_init__(self) -> None:
        limits = (self.max_file_size, self.max_member_size, self.max_archive_members)
        if min(limits) < 1 or self.max_archive_depth < 0 or self.min_scanners < 1:
            raise ValueError("scan limits must be positive")
        if not math.isfinite(self.scanner_timeout) or self.scanner_timeout <= 0:
            raise ValueError("scanner_timeout must be a positive number of seconds")
        knobs = (
            self.medium_finding_verdict,
            self.unrecognised_data_verdict,
            self.unscanned_code_verdict,
        )
        if Verdict.CLEAN in knobs:
            raise ValueError("a scan policy cannot turn what it could not check into 'clean'")

    @classmethod
    def strict(cls) -> ScanPolicy:
        return cls()

    @classmethod
    def lenient(cls) -> ScanPolicy:
        """Unrecognised data, unscanned code and MEDIUM findings warn instead of blocking."""
        return cls(
            name="lenient",
            min_scanners=1,
            medium_finding_verdict=Verdict.WARNING,
            unrecognised_data_verdict=Verdict.WARNING,
            unscanned_code_verdict=Verdict.WARNING,
        )

    def allows_import(self, dotted: str) -> bool:
        return dotted in self.allowed_imports or any(
            f"{prefix}.*" in self.allowed_imports for prefix in _dotted_prefixes(dotted)
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "max_file_size": self.max_file_size,
            "max_member_size": self.max_member_size,
            "max_archive_depth": self.max_archive_depth,
            "max_archive_members": self.max_archive_members,
            "scanner_timeout": self.scanner_timeout,
            "min_scanners": self.min_scanners,
            "allowed_imports": sorted(self.allowed_imports),
            "medium_finding_verdict": self.medium_finding_verdict.value,
            "unrecognised_data_verdict": self.unrecognised_data_verdict.value,
            "unscanned_code_verdict": self.unscanned_code_verdict.value,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ScanPolicy:
        return cls(
            name=str(data["name"]),
            max_file_size=int(data["max_file_size"]),
            max_member_size=int(data["max_member_size"]),
            max_archive_depth=int(data["max_archive_depth"]),
            max_archive_members=int(data["max_archive_members"]),
            scanner_timeout=float(data["scanner_timeout"]),
            min_scanners=int(data["min_scanners"]),
            allowed_imports=frozenset(str(item) for item in data["allowed_imports"]),
            medium_finding_verdict=Verdict(data["medium_finding_verdict"]),
            unrecognised_data_verdict=Verdict(data["unrecognised_data_verdict"]),
            unscanned_code_verdict=Verdict(data["unscanned_code_verdict"]),
        )

    def canonical_json(self) -> bytes:
        """RFC 8785 bytes of :meth:`to_dict`: what the predicate's digest covers."""
        return bytes(rfc8785.dumps(self.to_dict()))


def _path_key(path: str) -> tuple[pathlib.PurePosixPath, ...]:
    # Component-wise order (as model_manifest), members right after their archive.
    return tuple(pathlib.PurePosixPath(part) for part in path.split("!/"))


@dataclass(frozen=True, slots=True)
class ScanReport:
    """Every file's result, the scanners and the policy; JSON-ready and deterministic."""

    policy: ScanPolicy
    scanners: tuple[ScannerInfo, ...]
    files: tuple[FileResult, ...]

    @property
    def verdict(self) -> Verdict:
        """The worst file verdict; ``unknown`` when there was nothing to scan."""
        if not self.files:
            return Verdict.UNKNOWN
        return Verdict.worst(item.verdict for item in self.files)

    def counts(self) -> dict[str, int]:
        counts = {verdict.value: 0 for verdict in Verdict}
        for item in self.files:
            counts[item.verdict.value] += 1
        return counts

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": _REPORT_VERSION,
            "verdict": self.verdict.value,
            "counts": self.counts(),
            "policy": self.policy.to_dict(),
            "scanners": [item.to_dict() for item in self.scanners],
            "files": [item.to_dict() for item in self.files],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ScanReport:
        """Inverse of :meth:`to_dict`; refuses a stored verdict that its files contradict."""
        if data.get("version") != _REPORT_VERSION:
            raise ValueError("unsupported scan report version")
        report = cls(
            policy=ScanPolicy.from_dict(data["policy"]),
            scanners=tuple(
                ScannerInfo(str(item["name"]), str(item["version"])) for item in data["scanners"]
            ),
            files=tuple(FileResult.from_dict(item) for item in data["files"]),
        )
        if data.get("verdict") != report.verdict.value:
            raise ValueError("the report's verdict does not follow from its files")
        return report

    def to_test_result_predicate(self, *, url: str | None = None) -> dict[str, Any]:
        """The ``https://in-toto.io/attestation/test-result/v0.1`` predicate for this scan.

        Each file (and archive member) is one test: clean -> ``passedTests``,
        warning -> ``warnedTests``, unknown or unsafe -> ``failedTests``.
        ``configuration`` names the scanners (purl URIs) and carries the policy
        (content + sha256 of its RFC 8785 form). The full report travels in the
        extra field ``scanReport``, which consumers of the spec ignore.
        """
        tests: dict[str, list[str]] = {"passed": [], "warned": [], "failed": []}
        outcome = {
            Verdict.CLEAN: "passed",
            Verdict.WARNING: "warned",
            Verdict.UNKNOWN: "failed",
            Verdict.UNSAFE: "failed",
        }
        for item in self.files:
            tests[outcome[item.verdict]].append(item.path)
        result = {"passed": "PASSED", "warned": "WARNED", "failed": "FAILED"}[outcome[self.verdict]]
        policy = self.policy.canonical_json()
        configuration: list[dict[str, Any]] = [
            {
                "name": f"scan-policy/{self.policy.name}",
                "digest": {"sha256": hashlib.sha256(policy).hexdigest()},
                "content": base64.b64encode(policy).decode("ascii"),
                "mediaType": "application/json",
            }
        ]
        for scanner in self.scanners:
            descriptor: dict[str, Any] = {"name": scanner.name}
            if scanner.name == REGISTRY_SCANNER:
                descriptor["annotations"] = {"version": scanner.version}
                descriptor["digest"] = {"sha256": _RULES_DIGEST}
            else:
                descriptor["uri"] = f"pkg:pypi/{scanner.name}@{scanner.version}"
            configuration.append(descriptor)
        predicate: dict[str, Any] = {
            "result": result,
            "configuration": configuration,
            "passedTests": tests["passed"],
            "warnedTests": tests["warned"],
            "failedTests": tests["failed"],
            "scanReport": self.to_dict(),
        }
        if url is not None:
            predicate["url"] = url
        return predicate
