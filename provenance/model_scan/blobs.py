"""The bytes of a file (memory-mapped) or of an archive member (in memory), as scanners read them.

Also the bounded read of a zip member, which refuses to decompress past the policy's limit.
"""

from __future__ import annotations

import io
import mmap
import zipfile
from typing import IO, cast


class _Blob:
    """The bytes of one file or archive member, handed to each scanner as its own stream.

    Streams are tracked so that :meth:`close` can pull them from under a scanner
    thread that timed out: its next read fails and the thread ends.
    """

    size: int

    def __init__(self) -> None:
        self._streams: list[IO[bytes] | mmap.mmap] = []

    def read_at(self, offset: int, length: int) -> bytes:
        raise NotImplementedError

    def open(self) -> IO[bytes]:
        raise NotImplementedError

    def close(self) -> None:
        for stream in self._streams:
            stream.close()
        self._streams.clear()


class _MappedStream(mmap.mmap):
    """A read-only mapping with the file-object methods zipfile also asks for."""

    def seekable(self) -> bool:
        return True

    def readable(self) -> bool:
        return True


class _FileBlob(_Blob):
    """A file on disk, memory-mapped: read once by the kernel, shared by every scanner."""

    def __init__(self, fd: int, size: int) -> None:
        super().__init__()
        self._fd = fd
        self.size = size
        self._map = mmap.mmap(fd, 0, access=mmap.ACCESS_READ)

    def read_at(self, offset: int, length: int) -> bytes:
        return self._map[offset : offset + length]

    def open(self) -> IO[bytes]:
        stream = _MappedStream(self._fd, 0, access=mmap.ACCESS_READ)
        self._streams.append(stream)
        return cast("IO[bytes]", stream)  # duck-typed: read/readline/seek/tell

    def close(self) -> None:
        super().close()
        self._map.close()


class _BytesBlob(_Blob):
    """An archive member, decompressed in memory (bounded by ``max_member_size``)."""

    def __init__(self, content: bytes) -> None:
        super().__init__()
        self._content = content
        self.size = len(content)

    def read_at(self, offset: int, length: int) -> bytes:
        return self._content[offset : offset + length]

    def open(self) -> IO[bytes]:
        stream = io.BytesIO(self._content)  # shares the bytes, no copy
        self._streams.append(stream)
        return stream


class _SizeLimit(Exception):
    """Internal: a member decompresses to more than the policy allows."""


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int) -> bytes:
    """The member's bytes; never more than ``limit`` decompressed (zip bombs)."""
    with archive.open(info) as member:
        content = member.read(limit + 1)
    if len(content) > limit:
        raise _SizeLimit
    return content
