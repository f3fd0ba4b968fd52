"""A file's format recognised from its content (magic bytes, header parsing), never its name.

Pickles that look like nothing else come out as text or unknown here; the scan's
pickle pass settles them.
"""

from __future__ import annotations

import codecs
import io
import json
import math
import pathlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import numpy as np

from provenance.model_scan.blobs import _Blob
from provenance.model_scan.enums import _MIB, Format
from provenance.model_scan.pickles import _is_torch_legacy, _Malformed, _starts_with_proto
from provenance.model_scan.rules import _words

_HDF5_SIGNATURE: Final = b"\x89HDF\r\n\x1a\n"
_ARCHIVE_MAGICS: Final = (
    b"\x1f\x8b",  # gzip
    b"\xfd7zXZ\x00",  # xz
    b"7z\xbc\xaf\x27\x1c",  # 7z
    b"\x28\xb5\x2f\xfd",  # zstd
    b"Rar!\x1a\x07",  # rar
)
_NATIVE_MAGICS: Final = (
    b"\x7fELF",
    b"\xfe\xed\xfa\xce",
    b"\xfe\xed\xfa\xcf",
    b"\xce\xfa\xed\xfe",
    b"\xcf\xfa\xed\xfe",
    b"\xca\xfe\xba\xbe",
    b"\x00asm",
)
_SOURCE_SUFFIXES: Final = frozenset(
    _words(".py .pyw .sh .bash .zsh .bat .cmd .ps1 .js .rb .pl .lua .r")
)
_MAX_SAFETENSORS_HEADER: Final = 100 * _MIB
_TEXT_CHUNK: Final = 4 * _MIB
_BINARY_BYTES: Final = re.compile(rb"[\x00-\x08\x0e-\x1a\x1c-\x1f]")
# ModelProto (onnx.proto3) and SavedModel top-level fields: number -> wire type.
_ONNX_FIELDS: Final = {1: 0, 2: 2, 3: 2, 4: 2, 5: 0, 6: 2, 7: 2, 8: 2, 14: 2, 20: 2, 25: 2, 26: 2}
_SAVEDMODEL_FIELDS: Final = {1: 0, 2: 2}
_MAX_PROTOBUF_FIELDS: Final = 100_000
_PYTORCH_STORAGE: Final = re.compile(r"[^/]+/data/\d+")
_PYTORCH_PICKLE: Final = re.compile(r"[^/]+/(data|constants)\.pkl")


def _is_zip(head: bytes) -> bool:
    return head.startswith((b"PK\x03\x04", b"PK\x05\x06"))


def _is_hdf5(blob: _Blob) -> bool:
    # The superblock may follow a user block of 512, 1024, 2048 ... bytes.
    return any(
        blob.read_at(offset, len(_HDF5_SIGNATURE)) == _HDF5_SIGNATURE
        for offset in (0, 512, 1024, 2048)
    )


def _is_other_archive(head: bytes) -> bool:
    bzip2 = head.startswith(b"BZh") and head[3:4].isdigit() and head[4:10] == b"1AY&SY"
    return head.startswith(_ARCHIVE_MAGICS) or bzip2 or head[257:262] == b"ustar"


def _is_native(blob: _Blob, head: bytes) -> bool:
    if head.startswith(_NATIVE_MAGICS):
        return True
    if head.startswith(b"MZ") and len(head) >= 64:
        pe_offset = int.from_bytes(head[60:64], "little")
        return blob.read_at(pe_offset, 4) == b"PE\x00\x00"
    return False


def _safetensors_header(blob: _Blob, head: bytes) -> dict[str, Any] | None:
    """The JSON header behind the 8-byte little-endian length, if there is one."""
    length = int.from_bytes(head[:8], "little")
    if blob.size < 10 or not 2 <= length <= _MAX_SAFETENSORS_HEADER or 8 + length > blob.size:
        return None
    raw = blob.read_at(8, length)
    try:
        header = json.loads(raw) if raw.startswith(b"{") else None
    except ValueError:
        return None
    return header if isinstance(header, dict) else None


def _tensor_end(name: str, entry: object) -> int | None:
    """Where a header entry's data ends (0 for ``__metadata__``); None if malformed."""
    if name == "__metadata__":
        valid = isinstance(entry, dict) and all(isinstance(v, str) for v in entry.values())
        return 0 if valid else None
    if not isinstance(entry, dict):
        return None
    offsets = entry.get("data_offsets")
    valid = (
        isinstance(offsets, list)
        and len(offsets) == 2
        and all(type(value) is int for value in offsets)
        and 0 <= offsets[0] <= offsets[1]
        and isinstance(entry.get("dtype"), str)
        and isinstance(entry.get("shape"), list)
    )
    return int(offsets[1]) if valid and isinstance(offsets, list) else None


def _safetensors_valid(blob: _Blob, head: bytes) -> bool:
    """8-byte length, a JSON header, and tensor offsets that account for every byte."""
    header = _safetensors_header(blob, head)
    if header is None:
        return False
    ends = [_tensor_end(name, entry) for name, entry in header.items()]
    if None in ends:
        return False
    data_size = max((end for end in ends if end is not None), default=0)
    return 8 + int.from_bytes(head[:8], "little") + data_size == blob.size


@dataclass(frozen=True, slots=True)
class _Numpy:
    format: Format
    payload_offset: int
    problem: str | None = None


def _numpy_header(blob: _Blob) -> _Numpy:
    """Reads a ``.npy`` header with numpy's own (literal_eval based) parser."""
    header = io.BytesIO(blob.read_at(0, 1 * _MIB))
    try:
        version = np.lib.format.read_magic(header)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(header)
        elif version in ((2, 0), (3, 0)):
            shape, _, dtype = np.lib.format.read_array_header_2_0(header)
        else:
            return _Numpy(Format.NUMPY, 0, f"unsupported .npy version {version}")
    except (ValueError, TypeError, SyntaxError, EOFError) as exc:
        return _Numpy(Format.NUMPY, 0, f"unreadable .npy header: {exc}")
    offset = header.tell()
    if dtype.hasobject:
        return _Numpy(Format.NUMPY_PICKLE, offset)
    expected = offset + dtype.itemsize * math.prod(shape)
    if expected != blob.size:
        return _Numpy(Format.NUMPY, offset, f".npy header announces {expected} bytes")
    return _Numpy(Format.NUMPY, offset)


def _varint(blob: _Blob, pos: int) -> tuple[int, int]:
    chunk = blob.read_at(pos, 10)
    value = 0
    for index, byte in enumerate(chunk):
        value |= (byte & 0x7F) << (7 * index)
        if not byte & 0x80:
            return value, pos + index + 1
    raise _Malformed("bad varint")


def _protobuf_fields(blob: _Blob, allowed: Mapping[int, int]) -> set[int] | None:
    """Top-level field numbers of a protobuf message, skipping bodies; None if not one."""
    pos, seen = 0, set[int]()
    try:
        while pos < blob.size and len(seen) <= _MAX_PROTOBUF_FIELDS:
            tag, pos = _varint(blob, pos)
            number, wire_type = tag >> 3, tag & 7
            if allowed.get(number) != wire_type:
                return None
            value, pos = _varint(blob, pos)
            pos += value if wire_type == 2 else 0
            seen.add(number)
    except _Malformed:
        return None
    return seen if pos == blob.size else None


def _is_text(blob: _Blob) -> bool:
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        for offset in range(0, blob.size, _TEXT_CHUNK):
            chunk = blob.read_at(offset, _TEXT_CHUNK)
            if _BINARY_BYTES.search(chunk):
                return False
            decoder.decode(chunk)
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


@dataclass(frozen=True, slots=True)
class _Detected:
    format: Format
    payload_offset: int = 0
    problem: str | None = None


def _detect(blob: _Blob, name: str) -> _Detected:  # noqa: PLR0911 - one return per format
    """The format by content. Pickles that look like nothing else come out as
    TEXT or UNKNOWN here; the caller's pickle pass settles them."""
    if blob.size == 0:
        return _Detected(Format.EMPTY)
    head = blob.read_at(0, 512)
    if _is_zip(head):
        return _Detected(Format.ZIP)
    if head.startswith(b"\x93NUMPY"):
        numpy_header = _numpy_header(blob)
        return _Detected(numpy_header.format, numpy_header.payload_offset, numpy_header.problem)
    if _safetensors_valid(blob, head):
        return _Detected(Format.SAFETENSORS)
    if _is_hdf5(blob):
        return _Detected(Format.HDF5)
    if _starts_with_proto(head):
        return _Detected(Format.PYTORCH_LEGACY if _is_torch_legacy(blob) else Format.PICKLE)
    if _is_other_archive(head):
        return _Detected(Format.ARCHIVE)
    if _is_native(blob, head):
        return _Detected(Format.NATIVE_CODE)
    fields = _protobuf_fields(blob, _ONNX_FIELDS)
    if fields is not None and {1, 7} <= fields:
        return _Detected(Format.ONNX)
    if name.endswith(".pb") and _protobuf_fields(blob, _SAVEDMODEL_FIELDS):
        return _Detected(Format.TF_SAVEDMODEL)
    if _is_text(blob):
        is_source = head.startswith(b"#!") or pathlib.PurePosixPath(name).suffix.lower() in (
            _SOURCE_SUFFIXES
        )
        return _Detected(Format.SOURCE_CODE if is_source else Format.TEXT)
    return _Detected(Format.UNKNOWN)
