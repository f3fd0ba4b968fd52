"""Scanner names, size units and the enums every part of the scan speaks.

:class:`Verdict` and :class:`Severity` are ordered (worst last); :class:`Format` is a
file's format as recognised from its content, with the sets of formats that can run
code, that are pickles, or that some scanner examines.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from typing import Final

TEST_RESULT_PREDICATE_TYPE: Final = "https://in-toto.io/attestation/test-result/v0.1"
MODELSCAN: Final = "modelscan"
PICKLESCAN: Final = "picklescan"
REGISTRY_SCANNER: Final = "secmlops-model-scan"

_REPORT_VERSION: Final = 1
_GIB: Final = 1024**3
_MIB: Final = 1024**2


class _Ranked(enum.StrEnum):
    """A string enum whose members are ordered by declaration (first = lowest)."""

    @property
    def rank(self) -> int:
        return list(type(self)).index(self)


class Verdict(_Ranked):
    """Outcome for a file or a whole model, in increasing order of gravity."""

    CLEAN = "clean"
    WARNING = "warning"
    UNKNOWN = "unknown"
    UNSAFE = "unsafe"

    @classmethod
    def worst(cls, verdicts: Iterable[Verdict]) -> Verdict:
        return max(verdicts, key=lambda verdict: verdict.rank, default=cls.CLEAN)


class Severity(_Ranked):
    LOW = "LOW"
    MEDIUM = "MEDIUM"
    HIGH = "HIGH"
    CRITICAL = "CRITICAL"


class Format(enum.StrEnum):
    """A file's format as recognised from its content."""

    SAFETENSORS = "safetensors"
    ONNX = "onnx"
    NUMPY = "numpy"
    NUMPY_PICKLE = "numpy-pickle"
    PICKLE = "pickle"
    PYTORCH_LEGACY = "pytorch-legacy"
    PYTORCH_ZIP = "pytorch-zip"
    TENSOR_STORAGE = "tensor-storage"
    KERAS = "keras"
    HDF5 = "hdf5"
    TF_SAVEDMODEL = "tensorflow-savedmodel"
    ZIP = "zip"
    ARCHIVE = "archive"
    TEXT = "text"
    SOURCE_CODE = "source-code"
    NATIVE_CODE = "native-code"
    EMPTY = "empty"
    SPECIAL = "special"
    UNKNOWN = "unknown"

    @property
    def can_execute(self) -> bool:
        """Whether loading a file of this format can run code it carries."""
        return self in _EXECUTABLE_FORMATS


_EXECUTABLE_FORMATS: Final = frozenset(
    {
        Format.NUMPY_PICKLE,
        Format.PICKLE,
        Format.PYTORCH_LEGACY,
        Format.PYTORCH_ZIP,
        Format.KERAS,
        Format.HDF5,
        Format.TF_SAVEDMODEL,
        Format.SOURCE_CODE,
        Format.NATIVE_CODE,
    }
)
_PICKLE_FORMATS: Final = frozenset({Format.PICKLE, Format.PYTORCH_LEGACY, Format.NUMPY_PICKLE})
# Formats some scanner can examine: they must be examined by ``min_scanners`` of them.
_SCANNED_FORMATS: Final = _PICKLE_FORMATS | {Format.KERAS, Format.HDF5, Format.TF_SAVEDMODEL}
_UNSCANNED_CODE: Final = frozenset({Format.SOURCE_CODE, Format.NATIVE_CODE})
