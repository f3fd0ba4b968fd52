"""provenance.model_scan: every model file is judged without being loaded, and fail-closed.

Each malicious artifact is built here, by pickling an object whose ``__reduce__``
names the payload or by writing opcodes by hand; nothing is ever unpickled, and
the tests that carry a shell payload check that its marker file never appears.
No database, no downloads, small files only.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata
import io
import json
import os
import pickle
import runpy
import statistics
import threading
import zipfile
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import picklescan.scanner  # type: ignore[import-untyped]
import pytest
from safetensors.numpy import save_file

from provenance.model_scan import (
    MODELSCAN,
    PICKLESCAN,
    REGISTRY_SCANNER,
    FileResult,
    Format,
    ScanPolicy,
    ScanReport,
    Severity,
    Verdict,
    scan_directory,
    scan_file,
)

ALL_SCANNERS = (MODELSCAN, PICKLESCAN, REGISTRY_SCANNER)

# ------------------------------------------------------------------ helpers


class Reduce:
    """Pickles as a call of ``function(*args)``: what a malicious model file carries."""

    def __init__(self, function: Callable[..., Any], *args: Any) -> None:
        self.function = function
        self.args = args

    def __reduce__(self) -> tuple[Any, ...]:
        return self.function, self.args


def shell_pickle(marker: Path) -> bytes:
    return pickle.dumps(Reduce(os.system, f"touch {marker}"))


def zip_bytes(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def write(path: Path, content: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def scan_one(tmp_path: Path, name: str, content: bytes, **policy: Any) -> FileResult:
    report = scan_file(write(tmp_path / name, content), policy=ScanPolicy(**policy))
    return result_for(report, name)


def result_for(report: ScanReport, path: str) -> FileResult:
    (found,) = [item for item in report.files if item.path == path]
    return found


def operators(result: FileResult, scanner: str | None = None) -> set[str]:
    return {f.operator for f in result.findings if scanner is None or f.scanner == scanner}


def error_kinds(result: FileResult) -> set[tuple[str, str]]:
    return {(error.scanner, error.kind) for error in result.errors}


# ------------------------------------------------------------------ malicious pickles


def test_a_pickle_calling_os_system_is_unsafe_and_never_runs(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    result = scan_one(tmp_path, "model.pkl", shell_pickle(marker))

    assert result.verdict is Verdict.UNSAFE
    assert result.format is Format.PICKLE
    for scanner in ALL_SCANNERS:
        assert "posix.system" in operators(result, scanner)
    assert all(f.severity is Severity.CRITICAL for f in result.findings)
    assert not marker.exists()


@pytest.mark.parametrize(
    ("function", "operator"), [(exec, "builtins.exec"), (eval, "builtins.eval")]
)
def test_a_pickle_calling_exec_or_eval_is_unsafe(
    tmp_path: Path, function: Callable[..., Any], operator: str
) -> None:
    payload = pickle.dumps(Reduce(function, "__import__('os').system('true')"))

    result = scan_one(tmp_path, "model.pkl", payload)

    assert result.verdict is Verdict.UNSAFE
    for scanner in ALL_SCANNERS:
        assert operator in operators(result, scanner)


def test_runpy_run_code_is_unsafe(tmp_path: Path) -> None:
    payload = pickle.dumps(Reduce(runpy._run_code, "import os", {}))  # type: ignore[attr-defined]

    result = scan_one(tmp_path, "model.pkl", payload)

    assert result.verdict is Verdict.UNSAFE
    assert "runpy._run_code" in operators(result, REGISTRY_SCANNER)
    assert "runpy._run_code" in operators(result, MODELSCAN)


def test_an_import_the_external_denylists_miss_is_caught_by_the_registry(tmp_path: Path) -> None:
    payload = pickle.dumps(Reduce(importlib.import_module, "os"))

    result = scan_one(tmp_path, "model.pkl", payload)

    assert result.verdict is Verdict.UNSAFE
    (registry,) = [f for f in result.findings if f.scanner == REGISTRY_SCANNER]
    assert (registry.operator, registry.severity) == ("importlib.import_module", Severity.CRITICAL)
    # Neither external scanner calls it dangerous: the denylist gap this scan exists for.
    assert "importlib.import_module" not in operators(result, MODELSCAN)
    assert {f.severity for f in result.findings if f.scanner == PICKLESCAN} == {Severity.LOW}


def test_a_module_name_computed_at_load_time_is_unsafe(tmp_path: Path) -> None:
    # module = str("os"), then STACK_GLOBAL(module, "system"): no literal "os" to match.
    payload = b"".join(
        [
            pickle.PROTO + b"\x04",
            pickle.GLOBAL + b"builtins\nstr\n",
            pickle.SHORT_BINUNICODE + b"\x02os",
            pickle.TUPLE1 + pickle.REDUCE,
            pickle.SHORT_BINUNICODE + b"\x06system",
            pickle.STACK_GLOBAL,
            pickle.SHORT_BINUNICODE + b"\x04true",
            pickle.TUPLE1 + pickle.REDUCE + pickle.STOP,
        ]
    )

    result = scan_one(tmp_path, "model.pkl", payload)

    assert result.verdict is Verdict.UNSAFE
    (finding,) = [f for f in result.findings if f.code == "unresolved-import"]
    assert (finding.scanner, finding.severity) == (REGISTRY_SCANNER, Severity.CRITICAL)


def test_an_unlisted_import_blocks_under_strict_and_warns_under_lenient(tmp_path: Path) -> None:
    payload = pickle.dumps(Reduce(statistics.mean, [1.0, 2.0]))
    path = write(tmp_path / "model.pkl", payload)

    strict = result_for(scan_file(path), "model.pkl")
    lenient = result_for(scan_file(path, policy=ScanPolicy.lenient()), "model.pkl")

    assert strict.verdict is Verdict.UNKNOWN
    assert lenient.verdict is Verdict.WARNING
    (finding,) = [f for f in strict.findings if f.scanner == REGISTRY_SCANNER]
    assert (finding.operator, finding.code) == ("statistics.mean", "unlisted-import")
    assert finding.severity is Severity.MEDIUM


def test_a_protocol_0_pickle_posing_as_a_text_file_is_a_pickle(tmp_path: Path) -> None:
    payload = b"cos\nsystem\n(S'true'\ntR."  # plain ASCII, valid YAML, and a pickle

    result = scan_one(tmp_path, "MLmodel", payload)

    assert result.format is Format.PICKLE
    assert result.verdict is Verdict.UNSAFE
    assert "os.system" in operators(result, REGISTRY_SCANNER)


# ------------------------------------------------------------------ archives


def test_a_pytorch_zip_with_a_malicious_data_pkl_is_unsafe(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    archive = zip_bytes(
        {
            "archive/data.pkl": shell_pickle(marker),
            "archive/data/0": b"\x80\x02" + bytes(62),  # raw floats that happen to look like PROTO
            "archive/version": b"3\n",
        }
    )
    write(tmp_path / "model" / "model.pt", archive)

    report = scan_directory(tmp_path / "model")

    container = result_for(report, "model.pt")
    data_pkl = result_for(report, "model.pt!/archive/data.pkl")
    storage = result_for(report, "model.pt!/archive/data/0")
    assert (container.format, container.verdict) == (Format.PYTORCH_ZIP, Verdict.UNSAFE)
    assert (data_pkl.verdict, data_pkl.container) == (Verdict.UNSAFE, "model.pt")
    assert "posix.system" in operators(data_pkl, MODELSCAN) & operators(data_pkl, PICKLESCAN)
    assert (storage.format, storage.verdict) == (Format.TENSOR_STORAGE, Verdict.CLEAN)
    assert report.verdict is Verdict.UNSAFE
    assert not marker.exists()


def test_a_pickle_hidden_in_a_nested_archive_is_found(tmp_path: Path) -> None:
    inner = zip_bytes({"weights/payload.pkl": shell_pickle(tmp_path / "pwned")})
    write(tmp_path / "model" / "bundle.zip", zip_bytes({"inner.zip": inner, "README": b"hi\n"}))

    report = scan_directory(tmp_path / "model")

    hidden = result_for(report, "bundle.zip!/inner.zip!/weights/payload.pkl")
    assert hidden.verdict is Verdict.UNSAFE
    assert "posix.system" in operators(hidden, REGISTRY_SCANNER)
    assert result_for(report, "bundle.zip!/inner.zip").verdict is Verdict.UNSAFE
    assert result_for(report, "bundle.zip").verdict is Verdict.UNSAFE


def test_an_archive_nested_beyond_the_limit_is_unknown(tmp_path: Path) -> None:
    inner = zip_bytes({"payload.pkl": pickle.dumps({"x": 1.0})})
    write(tmp_path / "model" / "bundle.zip", zip_bytes({"inner.zip": inner}))

    report = scan_directory(tmp_path / "model", policy=ScanPolicy(max_archive_depth=1))

    inner_result = result_for(report, "bundle.zip!/inner.zip")
    assert inner_result.verdict is Verdict.UNKNOWN
    assert error_kinds(inner_result) == {(REGISTRY_SCANNER, "depth-limit")}
    assert not any(item.path.endswith("payload.pkl") for item in report.files)
    assert report.verdict is Verdict.UNKNOWN


def test_a_keras_archive_with_a_lambda_layer_is_unsafe(tmp_path: Path) -> None:
    config = {"class_name": "Sequential", "config": {"layers": [{"class_name": "Lambda"}]}}
    archive = zip_bytes(
        {"config.json": json.dumps(config).encode(), "metadata.json": b'{"keras_version": "3"}'}
    )

    result = scan_one(tmp_path, "model.keras", archive)

    assert (result.format, result.verdict) == (Format.KERAS, Verdict.UNSAFE)
    (lambda_layer,) = [f for f in result.findings if f.code == "lambda-layer"]
    assert (lambda_layer.operator, lambda_layer.severity) == ("keras.layers.Lambda", Severity.HIGH)


# ------------------------------------------------------------------ clean and harmless


def test_a_safetensors_file_is_clean(tmp_path: Path) -> None:
    path = tmp_path / "model.safetensors"
    save_file({"w": np.ones((4, 4), dtype=np.float32)}, str(path), metadata={"format": "np"})

    result = result_for(scan_file(path), "model.safetensors")

    assert (result.format, result.verdict) == (Format.SAFETENSORS, Verdict.CLEAN)
    assert not result.can_execute
    assert (result.findings, result.errors) == ((), ())


def test_a_plain_pickle_of_floats_is_a_warning_not_unsafe(tmp_path: Path) -> None:
    result = scan_one(tmp_path, "model.pkl", pickle.dumps({"a": 0.5, "b": 1.5}))

    assert (result.format, result.verdict) == (Format.PICKLE, Verdict.WARNING)
    assert result.can_execute
    assert result.findings == ()
    assert result.scanners == tuple(sorted(ALL_SCANNERS))


def test_numpy_files_are_judged_by_their_header(tmp_path: Path) -> None:
    np.save(tmp_path / "plain.npy", np.arange(12.0))
    np.save(tmp_path / "objects.npy", np.array([1, "x"], dtype=object), allow_pickle=True)

    report = scan_directory(tmp_path)

    plain, objects = result_for(report, "plain.npy"), result_for(report, "objects.npy")
    assert (plain.format, plain.verdict) == (Format.NUMPY, Verdict.CLEAN)
    assert (objects.format, objects.verdict) == (Format.NUMPY_PICKLE, Verdict.WARNING)
    assert objects.findings == ()
    assert objects.scanners == tuple(sorted(ALL_SCANNERS))


def test_an_onnx_model_is_clean(tmp_path: Path) -> None:
    graph = b"\x0a\x04node"  # GraphProto body: opaque to the scan
    model = b"\x08\x09" + b"\x12\x04test" + b"\x3a" + bytes([len(graph)]) + graph

    result = scan_one(tmp_path, "model.onnx", model)

    assert (result.format, result.verdict) == (Format.ONNX, Verdict.CLEAN)


def test_an_mlflow_model_directory_with_a_plain_pickle_is_a_warning(tmp_path: Path) -> None:
    model = tmp_path / "model"
    write(model / "MLmodel", b"artifact_path: model\nflavors:\n  python_function:\n    env: x\n")
    write(model / "conda.yaml", b"channels: [conda-forge]\ndependencies: [python=3.11]\n")
    write(model / "python_env.yaml", b"python: 3.11.7\ndependencies: [-r requirements.txt]\n")
    write(model / "requirements.txt", b"mlflow==3.17.2\nnumpy==2.4.6\n")
    state = OrderedDict(coef=np.arange(4.0), intercept=np.float64(0.5), classes=[0, 1])
    write(model / "model.pkl", pickle.dumps(state))

    report = scan_directory(model)

    assert report.verdict is Verdict.WARNING
    assert [item.path for item in report.files] == [
        "MLmodel",
        "conda.yaml",
        "model.pkl",
        "python_env.yaml",
        "requirements.txt",
    ]
    for item in report.files:
        expected = (
            (Format.PICKLE, Verdict.WARNING)
            if item.path == "model.pkl"
            else (
                Format.TEXT,
                Verdict.CLEAN,
            )
        )
        assert (item.format, item.verdict) == expected
    pickled = result_for(report, "model.pkl")
    assert all(f.severity.rank < Severity.MEDIUM.rank for f in pickled.findings)


# ------------------------------------------------------------------ fail-closed


def test_a_truncated_pickle_is_unknown(tmp_path: Path) -> None:
    payload = pickle.dumps({"weights": [0.5] * 100})[:-30]

    result = scan_one(tmp_path, "model.pkl", payload)

    assert result.verdict is Verdict.UNKNOWN
    assert (REGISTRY_SCANNER, "malformed") in error_kinds(result)
    assert result.findings == ()


def test_a_pickle_renamed_safetensors_is_not_clean(tmp_path: Path) -> None:
    benign = scan_one(tmp_path, "a.safetensors", pickle.dumps({"w": [0.5]}))
    malicious = scan_one(tmp_path, "b.safetensors", shell_pickle(tmp_path / "pwned"))

    assert (benign.format, benign.verdict) == (Format.PICKLE, Verdict.WARNING)
    assert (malicious.format, malicious.verdict) == (Format.PICKLE, Verdict.UNSAFE)
    assert "posix.system" in operators(malicious, MODELSCAN)
    assert not (tmp_path / "pwned").exists()


def test_a_safetensors_file_with_bytes_appended_is_not_clean(tmp_path: Path) -> None:
    path = tmp_path / "model.safetensors"
    save_file({"w": np.ones(4, dtype=np.float32)}, str(path))
    path.write_bytes(path.read_bytes() + b"\x00extra")

    result = result_for(scan_file(path), "model.safetensors")

    assert (result.format, result.verdict) == (Format.UNKNOWN, Verdict.UNKNOWN)


def test_a_file_over_the_size_limit_is_unknown(tmp_path: Path) -> None:
    result = scan_one(tmp_path, "model.pkl", pickle.dumps(list(range(1000))), max_file_size=1024)

    assert result.verdict is Verdict.UNKNOWN
    assert error_kinds(result) == {(REGISTRY_SCANNER, "size-limit")}


def test_a_member_over_the_size_limit_is_unknown(tmp_path: Path) -> None:
    archive = zip_bytes({"big.bin": bytes(4096)})

    report = scan_file(write(tmp_path / "a.zip", archive), policy=ScanPolicy(max_member_size=1024))

    assert error_kinds(result_for(report, "a.zip!/big.bin")) == {(REGISTRY_SCANNER, "size-limit")}
    assert report.verdict is Verdict.UNKNOWN


def test_a_scanner_that_raises_makes_the_file_unknown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("scanner crashed")

    monkeypatch.setattr(picklescan.scanner, "scan_pickle_bytes", broken)

    result = scan_one(tmp_path, "model.pkl", pickle.dumps({"a": 1.0}))

    assert result.verdict is Verdict.UNKNOWN
    (error,) = result.errors
    assert (error.scanner, error.kind) == (PICKLESCAN, "scanner-error")
    assert "scanner crashed" in error.message
    assert result.scanners == (MODELSCAN, REGISTRY_SCANNER)


def test_a_scanner_that_hangs_times_out_as_unknown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    release = threading.Event()

    def hanging(*args: Any, **kwargs: Any) -> None:
        release.wait(30)

    monkeypatch.setattr(picklescan.scanner, "scan_pickle_bytes", hanging)
    try:
        result = scan_one(tmp_path, "model.pkl", pickle.dumps({"a": 1.0}), scanner_timeout=0.2)
    finally:
        release.set()

    assert result.verdict is Verdict.UNKNOWN
    assert error_kinds(result) == {(PICKLESCAN, "timeout")}


def test_unrecognised_data_is_unknown_under_strict_and_a_warning_under_lenient(
    tmp_path: Path,
) -> None:
    path = write(tmp_path / "weights.bin", bytes(range(1, 7)) + os.urandom(256))

    strict = result_for(scan_file(path), "weights.bin")
    lenient = result_for(scan_file(path, policy=ScanPolicy.lenient()), "weights.bin")

    assert (strict.format, strict.verdict) == (Format.UNKNOWN, Verdict.UNKNOWN)
    assert lenient.verdict is Verdict.WARNING


def test_source_code_in_a_model_is_not_clean(tmp_path: Path) -> None:
    result = scan_one(tmp_path, "loader.py", b"import os\nos.system('true')\n")

    assert (result.format, result.verdict) == (Format.SOURCE_CODE, Verdict.UNKNOWN)


def test_a_symlink_is_not_followed(tmp_path: Path) -> None:
    outside = write(tmp_path / "outside.pkl", shell_pickle(tmp_path / "pwned"))
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "model.pkl").symlink_to(outside)

    result = result_for(scan_directory(tmp_path / "model"), "model.pkl")

    assert (result.format, result.verdict) == (Format.SPECIAL, Verdict.UNKNOWN)
    assert error_kinds(result) == {(REGISTRY_SCANNER, "not-a-regular-file")}


def test_an_empty_directory_is_unknown_and_an_empty_file_clean(tmp_path: Path) -> None:
    (tmp_path / "model").mkdir()
    assert scan_directory(tmp_path / "model").verdict is Verdict.UNKNOWN

    result = scan_one(tmp_path, "empty", b"")
    assert (result.format, result.verdict) == (Format.EMPTY, Verdict.CLEAN)


def test_a_policy_cannot_make_unchecked_files_clean() -> None:
    with pytest.raises(ValueError, match="clean"):
        ScanPolicy(unrecognised_data_verdict=Verdict.CLEAN)


# ------------------------------------------------------------------ the report


@pytest.fixture
def mixed_report(tmp_path: Path) -> ScanReport:
    model = tmp_path / "model"
    save_file({"w": np.zeros(2, dtype=np.float32)}, str(write(model / "w.safetensors", b"")))
    write(model / "model.pkl", pickle.dumps({"a": 1.0}))
    write(model / "sub" / "evil.pkl", shell_pickle(tmp_path / "pwned"))
    write(model / "sub" / "trunc.pkl", pickle.dumps([1.0] * 10)[:-3])
    return scan_directory(model)


def test_the_report_round_trips_through_json_and_is_deterministic(
    mixed_report: ScanReport, tmp_path: Path
) -> None:
    text = json.dumps(mixed_report.to_dict())

    assert ScanReport.from_dict(json.loads(text)) == mixed_report
    assert scan_directory(tmp_path / "model").to_json() == mixed_report.to_json()
    tampered = json.loads(text) | {"verdict": "clean"}
    with pytest.raises(ValueError, match="verdict"):
        ScanReport.from_dict(tampered)


def test_scanner_versions_are_recorded(mixed_report: ScanReport) -> None:
    versions = {scanner.name: scanner.version for scanner in mixed_report.scanners}

    assert versions[MODELSCAN] == importlib.metadata.version("modelscan")
    assert versions[PICKLESCAN] == importlib.metadata.version("picklescan")
    assert versions[REGISTRY_SCANNER]


def test_the_test_result_predicate_lists_every_file(mixed_report: ScanReport) -> None:
    predicate = mixed_report.to_test_result_predicate(url="https://registry.example/scans/1")

    assert predicate["result"] == "FAILED"
    assert predicate["passedTests"] == ["w.safetensors"]
    assert predicate["warnedTests"] == ["model.pkl"]
    assert predicate["failedTests"] == ["sub/evil.pkl", "sub/trunc.pkl"]
    assert predicate["url"] == "https://registry.example/scans/1"
    policy_descriptor, *scanner_descriptors = predicate["configuration"]
    content = base64.b64decode(policy_descriptor["content"])
    assert policy_descriptor["digest"]["sha256"] == hashlib.sha256(content).hexdigest()
    assert json.loads(content) == mixed_report.policy.to_dict()
    uris = {d.get("uri") for d in scanner_descriptors}
    assert f"pkg:pypi/picklescan@{importlib.metadata.version('picklescan')}" in uris
    assert ScanReport.from_dict(json.loads(json.dumps(predicate))["scanReport"]) == mixed_report


def test_a_clean_model_passes(tmp_path: Path) -> None:
    save_file({"w": np.zeros(2, dtype=np.float32)}, str(write(tmp_path / "m" / "w.st", b"")))
    write(tmp_path / "m" / "MLmodel", b"artifact_path: model\n")

    predicate = scan_directory(tmp_path / "m").to_test_result_predicate()

    assert (predicate["result"], predicate["failedTests"]) == ("PASSED", [])
