"""Model manifest of a 1 GiB, 5-file model: the registry against one-core hashlib and model_signing.

Targets (issue 4): at most 0.6x the single-core ``hashlib.sha256`` time (the limit on one core),
and faster than model_signing's own hashing. Files are in the page cache for all three.
BENCH_MANIFEST_MB changes the total size.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

TOTAL_MB = int(os.environ.get("BENCH_MANIFEST_MB", "1024"))
FILES = 5
REPEAT = 3


def _make_model(root: Path) -> None:
    per_file = TOTAL_MB * 1024 * 1024 // FILES
    block = os.urandom(8 * 1024 * 1024)
    for number in range(FILES):
        with (root / f"weights-{number}.bin").open("wb") as handle:
            written = 0
            while written < per_file:
                chunk = block[: min(len(block), per_file - written)]
                handle.write(chunk)
                written += len(chunk)


def _hashlib_one_core(root: Path) -> None:
    for path in sorted(root.iterdir()):
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            while chunk := handle.read(1024 * 1024):
                digest.update(chunk)


def _model_signing(root: Path) -> None:
    import model_signing.hashing

    model_signing.hashing.Config().hash(root)


def _registry(root: Path) -> None:
    from provenance.model_manifest import compute_manifest

    compute_manifest(root)


def _median(fn: Callable[[Path], None], root: Path) -> float:
    timings = []
    for _ in range(REPEAT):
        started = time.perf_counter()
        fn(root)
        timings.append(time.perf_counter() - started)
    return statistics.median(timings)


def run() -> None:
    root = Path(tempfile.mkdtemp(prefix="bench-model-"))
    try:
        _make_model(root)
        _hashlib_one_core(root)  # warm the page cache
        one_core = _median(_hashlib_one_core, root)
        theirs = _median(_model_signing, root)
        ours = _median(_registry, root)
    finally:
        shutil.rmtree(root)
    print(f"{TOTAL_MB} MiB in {FILES} files, {os.cpu_count()} cores, median of {REPEAT}:")
    print(f"  hashlib.sha256, one core:   {one_core:.2f} s")
    print(f"  model_signing hashing:      {theirs:.2f} s")
    print(f"  registry compute_manifest:  {ours:.2f} s  = {ours / one_core:.2f}x one core"
          f" (target <= 0.6x), {ours / theirs:.2f}x model_signing (target < 1x)")  # fmt: skip
