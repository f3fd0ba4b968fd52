"""The external scanners, modelscan and picklescan, and the count of Keras Lambda layers.

Each scanner returns an :class:`_Opinion`: what one scanner said about one file.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from modelscan import scanners as ms_scanners  # type: ignore[import-untyped]
from modelscan import settings as ms_settings
from modelscan.model import Model as MsModel  # type: ignore[import-untyped]
from picklescan import scanner as picklescan_scanner  # type: ignore[import-untyped]

from provenance.model_scan.blobs import _Blob
from provenance.model_scan.enums import _PICKLE_FORMATS, MODELSCAN, PICKLESCAN, Format, Severity
from provenance.model_scan.results import Finding, ScanFailure, SkippedScan

_MODELSCAN_CLASSES: Final[Mapping[Format, tuple[tuple[str, Any, str], ...]]] = {
    Format.PICKLE: (("PickleUnsafeOpScan", ms_settings.SupportedModelFormats.PICKLE, ".pkl"),),
    # modelscan 0.8.8's NumpyUnsafeOpScan calls np.lib.format._check_version, gone in
    # numpy 2.x: its pickle scanner gets the payload after the .npy header instead.
    Format.NUMPY_PICKLE: (
        ("PickleUnsafeOpScan", ms_settings.SupportedModelFormats.PICKLE, ".pkl"),
    ),
    Format.PYTORCH_LEGACY: (
        ("PyTorchUnsafeOpScan", ms_settings.SupportedModelFormats.PYTORCH, ".pt"),
    ),
    Format.KERAS: (("KerasLambdaDetectScan", ms_settings.SupportedModelFormats.KERAS, ".keras"),),
    Format.HDF5: (("H5LambdaDetectScan", ms_settings.SupportedModelFormats.KERAS_H5, ".h5"),),
    Format.TF_SAVEDMODEL: (
        ("SavedModelLambdaDetectScan", ms_settings.SupportedModelFormats.TENSORFLOW, ".pb"),
        ("SavedModelTensorflowOpScan", ms_settings.SupportedModelFormats.TENSORFLOW, ".pb"),
    ),
}
_MODELSCAN_FAILURE_KINDS: Final = {"PICKLE_GENOPS": "malformed", "DEPENDENCY": "unsupported"}


@dataclass(slots=True)
class _Opinion:
    """What one scanner said about one file."""

    scanner: str
    findings: list[Finding] = field(default_factory=list)
    skipped: list[SkippedScan] = field(default_factory=list)
    failures: list[ScanFailure] = field(default_factory=list)

    @property
    def completed(self) -> bool:
        return not self.failures and not self.skipped


def _modelscan(blob: _Blob, fmt: Format) -> _Opinion:
    """modelscan's scanner classes for ``fmt``, each fed a fresh stream."""
    opinion = _Opinion(MODELSCAN)
    for class_name, ms_format, suffix in _MODELSCAN_CLASSES[fmt]:
        scanner = getattr(ms_scanners, class_name)(ms_settings.DEFAULT_SETTINGS)
        model = MsModel(f"entry{suffix}", blob.open())
        model.set_context("formats", [ms_format])
        results = scanner.scan(model)
        if results is None:
            opinion.skipped.append(SkippedScan(MODELSCAN, f"{class_name} did not apply"))
            continue
        for issue in results.issues:
            details = issue.details
            opinion.findings.append(
                Finding(
                    MODELSCAN,
                    Severity(issue.severity.name),
                    f"{details.module}.{details.operator}",
                    "dangerous-import" if fmt in _PICKLE_FORMATS else "unsafe-operator",
                    str(details.output_json()["description"]),
                )
            )
        for error in results.errors:
            kind = _MODELSCAN_FAILURE_KINDS.get(error.name(), "scanner-error")
            opinion.failures.append(ScanFailure(MODELSCAN, kind, f"{class_name}: {error.message}"))
        for skip in results.skipped:
            reason = f"{class_name}: {skip.category.name}: {skip.message}"
            opinion.skipped.append(SkippedScan(MODELSCAN, reason))
    return opinion


_PICKLESCAN_FUNCTIONS: Final = {
    Format.PICKLE: "scan_pickle_bytes",
    Format.NUMPY_PICKLE: "scan_numpy",
    Format.PYTORCH_LEGACY: "scan_pytorch",
}


def _picklescan(blob: _Blob, fmt: Format, path: str) -> _Opinion:
    opinion = _Opinion(PICKLESCAN)
    # Looked up at call time so that the library's own function is what runs.
    scan = getattr(picklescan_scanner, _PICKLESCAN_FUNCTIONS[fmt])
    result = scan(blob.open(), path)
    for found in result.globals:
        operator = f"{found.module}.{found.name}"
        if found.safety is picklescan_scanner.SafetyLevel.Dangerous:
            description = f"picklescan: dangerous import {operator}"
            finding = Finding(
                PICKLESCAN, Severity.CRITICAL, operator, "dangerous-import", description
            )
        elif found.safety is picklescan_scanner.SafetyLevel.Suspicious:
            description = f"picklescan: import {operator} is not on its safe list"
            finding = Finding(PICKLESCAN, Severity.LOW, operator, "suspicious-import", description)
        else:
            continue
        opinion.findings.append(finding)
    if result.scan_err:
        opinion.failures.append(
            ScanFailure(PICKLESCAN, "malformed", "picklescan could not parse the whole pickle")
        )
    return opinion


def _keras_lambdas(config: object) -> int:
    """Lambda layers anywhere in a Keras model config (nested models included)."""
    if isinstance(config, list):
        return sum(_keras_lambdas(item) for item in config)
    if not isinstance(config, dict):
        return 0
    own = 1 if config.get("class_name") == "Lambda" else 0
    return own + sum(_keras_lambdas(value) for value in config.values())
