"""The entry points, :func:`scan_directory` and :func:`scan_file`, and the walk over a directory.

Only regular files are opened (``O_NOFOLLOW``, ``O_NONBLOCK``); symlinks, devices and
FIFOs are recorded as failures without being read.
"""

from __future__ import annotations

import errno
import os
import pathlib
import stat
from collections.abc import Iterator
from typing import Final

from provenance.model_scan.blobs import _FileBlob
from provenance.model_scan.enums import Format
from provenance.model_scan.results import ScanPolicy, ScanReport
from provenance.model_scan.scan import _Judgement, _Scan

# O_NONBLOCK: opening a FIFO planted in a model directory must not hang the scan.
_OPEN_FLAGS: Final = (
    os.O_RDONLY
    | getattr(os, "O_NOFOLLOW", 0)
    | getattr(os, "O_CLOEXEC", 0)
    | getattr(os, "O_NONBLOCK", 0)
)


def _record_failure(
    scan: _Scan, rel: str, *, size: int, fmt: Format, kind: str, message: str
) -> None:
    judgement = _Judgement(fmt)
    judgement.fail(kind, message)
    scan.record(rel, size, None, judgement)


def _scan_path(scan: _Scan, rel: str, path: pathlib.Path) -> None:
    """One top-level file: symlinks, devices and FIFOs are never opened for reading."""
    try:
        if not stat.S_ISREG(path.lstat().st_mode):
            raise OSError(errno.EINVAL, "not a regular file")
        fd = os.open(path, _OPEN_FLAGS)
    except OSError as exc:
        reason = str(exc.strerror)
        _record_failure(
            scan, rel, size=0, fmt=Format.SPECIAL, kind="not-a-regular-file", message=reason
        )
        return
    try:
        st = os.fstat(fd)  # the file opened, not the name looked at (swapped in between?)
        limit = scan.policy.max_file_size
        if not stat.S_ISREG(st.st_mode):
            _record_failure(
                scan,
                rel,
                size=0,
                fmt=Format.SPECIAL,
                kind="not-a-regular-file",
                message="not a file",
            )
        elif st.st_size == 0:
            scan.record(rel, 0, None, _Judgement(Format.EMPTY))
        elif st.st_size > limit:
            message = f"{st.st_size} bytes is over the limit of {limit}"
            _record_failure(
                scan, rel, size=st.st_size, fmt=Format.UNKNOWN, kind="size-limit", message=message
            )
        else:
            scan.entry(rel, _FileBlob(fd, st.st_size), depth=0, container=None)
    finally:
        os.close(fd)


def _walk(root: pathlib.Path) -> Iterator[tuple[str, pathlib.Path]]:
    """Every non-directory entry below ``root`` (hidden ones too), symlinks not followed."""
    stack: list[tuple[pathlib.PurePosixPath, pathlib.Path]] = [(pathlib.PurePosixPath(), root)]
    while stack:
        rel_dir, directory = stack.pop()
        with os.scandir(directory) as entries:
            for entry in entries:
                rel = rel_dir / entry.name
                if entry.is_dir(follow_symlinks=False):
                    stack.append((rel, directory / entry.name))
                else:
                    yield str(rel), directory / entry.name


def scan_directory(
    model_dir: str | os.PathLike[str], *, policy: ScanPolicy | None = None
) -> ScanReport:
    """Scans every file under ``model_dir`` without loading any of them.

    Raises:
        NotADirectoryError, FileNotFoundError: ``model_dir`` is not a directory.
    """
    root = pathlib.Path(model_dir)
    if not root.is_dir():
        raise NotADirectoryError(f"{root} is not a directory")
    scan = _Scan(policy or ScanPolicy.strict())
    for rel, path in _walk(root):
        _scan_path(scan, rel, path)
    return scan.report()


def scan_file(
    path: str | os.PathLike[str], *, policy: ScanPolicy | None = None, name: str | None = None
) -> ScanReport:
    """Scans one file; its result is named ``name`` (default: the file's own name)."""
    file_path = pathlib.Path(path)
    if not file_path.exists() and not file_path.is_symlink():
        raise FileNotFoundError(f"{file_path} does not exist")
    scan = _Scan(policy or ScanPolicy.strict())
    _scan_path(scan, name or file_path.name, file_path)
    return scan.report()
