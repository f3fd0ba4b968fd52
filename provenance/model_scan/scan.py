"""The scan itself: each file or archive member judged by the scanners that apply, then a verdict.

Scanners run in daemon threads with a timeout; archives are opened, never extracted,
and their members judged the same way, recursively.
"""

from __future__ import annotations

import json
import threading
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final, TypeVar

from provenance.model_scan.blobs import _Blob, _BytesBlob, _read_member, _SizeLimit
from provenance.model_scan.enums import (
    _MIB,
    _PICKLE_FORMATS,
    _SCANNED_FORMATS,
    _UNSCANNED_CODE,
    MODELSCAN,
    PICKLESCAN,
    REGISTRY_SCANNER,
    Format,
    Severity,
    Verdict,
)
from provenance.model_scan.pickles import (
    _TORCH_LEGACY_PICKLES,
    _analyse_pickle,
    _PickleAnalysis,
    _registry_pickle_findings,
)
from provenance.model_scan.results import (
    FileResult,
    Finding,
    ScanFailure,
    ScanPolicy,
    ScanReport,
    SkippedScan,
    _path_key,
    scanner_versions,
)
from provenance.model_scan.scanners import (
    _MODELSCAN_CLASSES,
    _PICKLESCAN_FUNCTIONS,
    _keras_lambdas,
    _modelscan,
    _Opinion,
    _picklescan,
)
from provenance.model_scan.sniffing import _PYTORCH_PICKLE, _PYTORCH_STORAGE, _detect

_T = TypeVar("_T")


@dataclass(slots=True)
class _Judgement:
    """Accumulates one entry's evidence before it becomes a :class:`FileResult`."""

    format: Format
    opinions: list[_Opinion] = field(default_factory=list)
    failures: list[ScanFailure] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    members: list[Verdict] = field(default_factory=list)

    def fail(self, kind: str, message: str, scanner: str = REGISTRY_SCANNER) -> None:
        self.failures.append(ScanFailure(scanner, kind, message))


_READ_ERRORS: Final = (
    zipfile.BadZipFile,
    zlib.error,
    OSError,
    RuntimeError,
    EOFError,
    NotImplementedError,
    ValueError,
)


class _Scan:
    def __init__(self, policy: ScanPolicy) -> None:
        self.policy = policy
        self.results: list[FileResult] = []

    def bounded(self, scanner: str, work: Callable[[], _T]) -> _T | ScanFailure:
        """Runs ``work`` in a daemon thread; an exception or overrun becomes a failure."""
        outcome: list[_T | ScanFailure] = []

        def target() -> None:
            try:
                outcome.append(work())
            except Exception as exc:  # noqa: BLE001 - any scanner crash is a verdict input: unknown
                outcome.append(
                    ScanFailure(scanner, "scanner-error", f"{type(exc).__name__}: {exc}")
                )

        thread = threading.Thread(target=target, name=f"model-scan-{scanner}", daemon=True)
        thread.start()
        thread.join(self.policy.scanner_timeout)
        if thread.is_alive():
            timeout = self.policy.scanner_timeout
            return ScanFailure(scanner, "timeout", f"no result within {timeout:g} s")
        if not outcome:  # a BaseException (SystemExit, KeyboardInterrupt...) ended the thread
            return ScanFailure(scanner, "scanner-error", "the scanner ended without a result")
        return outcome[0]

    def opinion(self, judgement: _Judgement, scanner: str, work: Callable[[], _Opinion]) -> None:
        result = self.bounded(scanner, work)
        if isinstance(result, ScanFailure):
            judgement.opinions.append(_Opinion(scanner, failures=[result]))
        else:
            judgement.opinions.append(result)

    # -- one file or member

    def entry(self, path: str, blob: _Blob, *, depth: int, container: str | None) -> Verdict:
        """Judges one file or member (and its members), records it, returns its verdict."""
        limit = self.policy.max_file_size if container is None else self.policy.max_member_size
        if blob.size > limit:
            judgement = _Judgement(Format.UNKNOWN)
            judgement.fail("size-limit", f"{blob.size} bytes is over the limit of {limit}")
            return self.record(path, blob.size, container, judgement)
        try:
            judgement = self.judge(path, blob, depth=depth)
        except _READ_ERRORS as exc:
            judgement = _Judgement(Format.UNKNOWN)
            judgement.fail("malformed", f"unreadable: {type(exc).__name__}: {exc}")
        finally:
            blob.close()
        return self.record(path, blob.size, container, judgement)

    def judge(self, path: str, blob: _Blob, *, depth: int) -> _Judgement:
        detected = _detect(blob, path.rsplit("!/", 1)[-1])
        judgement = _Judgement(detected.format)
        if detected.problem:
            judgement.fail("malformed", detected.problem)
        self.pickle_pass(judgement, blob)
        fmt = judgement.format
        if fmt is Format.NUMPY_PICKLE:
            self.registry_pickle(judgement, blob, detected.payload_offset, None)
        if fmt in _PICKLESCAN_FUNCTIONS:
            self.opinion(judgement, PICKLESCAN, lambda: _picklescan(blob, fmt, path))
        if fmt is Format.ZIP:
            self.archive(judgement, path, blob, depth)
        if judgement.format is Format.KERAS:
            self.opinion(judgement, REGISTRY_SCANNER, lambda: self.keras_config(blob))
        if judgement.format in _MODELSCAN_CLASSES:
            target = blob
            if fmt is Format.NUMPY_PICKLE:  # object arrays are small: a copy is affordable
                offset = detected.payload_offset
                target = _BytesBlob(blob.read_at(offset, blob.size - offset))
            self.opinion(judgement, MODELSCAN, lambda: _modelscan(target, judgement.format))
            if target is not blob:
                target.close()
        if judgement.format is Format.ARCHIVE:
            judgement.fail("unsupported", "archive format not opened by the scan")
        self.check_coverage(judgement)
        return judgement

    def pickle_pass(self, judgement: _Judgement, blob: _Blob) -> None:
        """This package's pickle walk from byte 0, on every file (see the package docstring)."""
        fmt = judgement.format
        if fmt is Format.EMPTY or fmt is Format.NUMPY_PICKLE:
            return
        max_pickles = _TORCH_LEGACY_PICKLES if fmt is Format.PYTORCH_LEGACY else None
        result = self.bounded(
            REGISTRY_SCANNER, lambda: _analyse_pickle(blob.open(), max_pickles=max_pickles)
        )
        if isinstance(result, ScanFailure):
            judgement.opinions.append(_Opinion(REGISTRY_SCANNER, failures=[result]))
            return
        if fmt in (Format.TEXT, Format.SOURCE_CODE, Format.UNKNOWN) and result.pickles:
            judgement.format = fmt = Format.PICKLE
        if fmt in _PICKLE_FORMATS:
            judgement.opinions.append(self.pickle_opinion(result))
        elif result.pickles:
            judgement.findings.append(
                Finding(
                    REGISTRY_SCANNER,
                    Severity.HIGH,
                    "<polyglot>",
                    "polyglot",
                    f"the file is a valid {fmt.value} and also a loadable pickle",
                )
            )
            judgement.findings.extend(_registry_pickle_findings(result, self.policy))

    def pickle_opinion(self, analysis: _PickleAnalysis) -> _Opinion:
        opinion = _Opinion(REGISTRY_SCANNER, _registry_pickle_findings(analysis, self.policy))
        if analysis.error:
            opinion.failures.append(ScanFailure(REGISTRY_SCANNER, "malformed", analysis.error))
        return opinion

    def registry_pickle(
        self, judgement: _Judgement, blob: _Blob, offset: int, max_pickles: int | None
    ) -> None:
        def work() -> _Opinion:
            stream = blob.open()
            stream.seek(offset)
            return self.pickle_opinion(_analyse_pickle(stream, max_pickles=max_pickles))

        self.opinion(judgement, REGISTRY_SCANNER, work)

    def keras_config(self, blob: _Blob) -> _Opinion:
        opinion = _Opinion(REGISTRY_SCANNER)
        with zipfile.ZipFile(blob.open()) as archive:
            config = json.loads(_read_member(archive, archive.getinfo("config.json"), 64 * _MIB))
        if count := _keras_lambdas(config):
            opinion.findings.append(
                Finding(
                    REGISTRY_SCANNER,
                    Severity.HIGH,
                    "keras.layers.Lambda",
                    "lambda-layer",
                    f"{count} Lambda layer(s): Python code that runs when the model is loaded",
                )
            )
        return opinion

    def check_coverage(self, judgement: _Judgement) -> None:
        if judgement.format not in _SCANNED_FORMATS:
            return
        completed = {o.scanner for o in judgement.opinions if o.completed}
        if len(completed) < self.policy.min_scanners:
            judgement.fail(
                "too-few-scanners",
                f"{len(completed)} scanner(s) completed, the policy requires "
                f"{self.policy.min_scanners}",
            )

    # -- archives

    def archive(self, judgement: _Judgement, path: str, blob: _Blob, depth: int) -> None:
        if depth >= self.policy.max_archive_depth:
            judgement.fail(
                "depth-limit",
                f"archive nested deeper than {self.policy.max_archive_depth} level(s)",
            )
            return
        try:
            archive = zipfile.ZipFile(blob.open())
        except _READ_ERRORS as exc:
            judgement.fail("malformed", f"unreadable zip: {type(exc).__name__}: {exc}")
            return
        with archive:
            infos = [info for info in archive.infolist() if not info.is_dir()]
            names = [info.filename for info in infos]
            if len(infos) > self.policy.max_archive_members:
                judgement.fail("member-limit", f"{len(infos)} members is over the limit")
                return
            if len(set(names)) != len(names):
                # Scanners and loaders may not read the same copy of a duplicated name.
                judgement.fail("malformed", "the archive holds the same member name twice")
            judgement.format = _archive_kind(names)
            for info in sorted(infos, key=lambda item: item.filename):
                judgement.members.append(self.member(judgement.format, path, archive, info, depth))

    def member(
        self, kind: Format, path: str, archive: zipfile.ZipFile, info: zipfile.ZipInfo, depth: int
    ) -> Verdict:
        member_path = f"{path}!/{info.filename}"
        if kind is Format.PYTORCH_ZIP and _PYTORCH_STORAGE.fullmatch(info.filename):
            # Raw tensor bytes: torch.load reads them as buffers, never unpickles them.
            return self.record(member_path, info.file_size, path, _Judgement(Format.TENSOR_STORAGE))
        if info.flag_bits & 0x1:
            judgement = _Judgement(Format.UNKNOWN)
            judgement.fail("unsupported", "encrypted member")
            return self.record(member_path, info.file_size, path, judgement)
        limit = self.policy.max_member_size
        judgement = _Judgement(Format.UNKNOWN)
        if info.file_size > limit:
            judgement.fail("size-limit", f"{info.file_size} bytes is over the limit of {limit}")
            return self.record(member_path, info.file_size, path, judgement)
        try:
            content = _read_member(archive, info, limit)
        except _SizeLimit:
            judgement.fail("size-limit", f"decompresses to more than {limit} bytes")
        except _READ_ERRORS as exc:
            judgement.fail("malformed", f"unreadable member: {type(exc).__name__}: {exc}")
        else:
            return self.entry(member_path, _BytesBlob(content), depth=depth + 1, container=path)
        return self.record(member_path, info.file_size, path, judgement)

    # -- results

    def record(self, path: str, size: int, container: str | None, judgement: _Judgement) -> Verdict:
        findings = list(judgement.findings)
        failures = list(judgement.failures)
        skipped: list[SkippedScan] = []
        for opinion in judgement.opinions:
            findings.extend(opinion.findings)
            failures.extend(opinion.failures)
            skipped.extend(opinion.skipped)
        verdict = Verdict.worst(
            [
                _base_verdict(judgement.format, self.policy),
                *(Verdict.UNKNOWN for _ in failures),
                *(_finding_verdict(finding.severity, self.policy) for finding in findings),
                *judgement.members,
            ]
        )
        self.results.append(
            FileResult(
                path=path,
                size=size,
                format=judgement.format,
                verdict=verdict,
                container=container,
                scanners=tuple(sorted({o.scanner for o in judgement.opinions if o.completed})),
                findings=tuple(sorted(set(findings), key=_finding_key)),
                skipped=tuple(sorted(set(skipped), key=lambda s: (s.scanner, s.reason))),
                errors=tuple(sorted(set(failures), key=lambda f: (f.scanner, f.kind, f.message))),
            )
        )
        return verdict

    def report(self) -> ScanReport:
        files = tuple(sorted(self.results, key=lambda item: _path_key(item.path)))
        return ScanReport(policy=self.policy, scanners=scanner_versions(), files=files)


def _archive_kind(names: list[str]) -> Format:
    if any(_PYTORCH_PICKLE.fullmatch(name) for name in names):
        return Format.PYTORCH_ZIP
    if "config.json" in names and "metadata.json" in names:
        return Format.KERAS
    return Format.ZIP


def _finding_key(finding: Finding) -> tuple[int, str, str, str, str]:
    return (
        -finding.severity.rank,
        finding.scanner,
        finding.operator,
        finding.code,
        finding.description,
    )


def _base_verdict(fmt: Format, policy: ScanPolicy) -> Verdict:
    if fmt is Format.UNKNOWN:
        return policy.unrecognised_data_verdict
    if fmt in _UNSCANNED_CODE:
        return policy.unscanned_code_verdict
    return Verdict.WARNING if fmt.can_execute else Verdict.CLEAN


def _finding_verdict(severity: Severity, policy: ScanPolicy) -> Verdict:
    if severity.rank >= Severity.HIGH.rank:
        return Verdict.UNSAFE
    if severity is Severity.MEDIUM:
        return policy.medium_finding_verdict
    return Verdict.WARNING
