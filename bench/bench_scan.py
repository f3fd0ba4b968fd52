"""Model scan of ~500 MB of mixed model files: the fail-closed scan against picklescan alone.

Target (issue 5): ``scan_directory`` (format checks + modelscan + picklescan + the registry's own
pickle import walk) takes at most 2.5x the time of running picklescan alone on the same files.
The mix: two safetensors shards, an .npy, a PyTorch-style zip, a pickle of numpy arrays, an
object-heavy pickle (many small opcodes: the worst case for every pickle scanner) and MLflow text
files. Files are in the page cache for both. A second line times the pickles alone. BENCH_SCAN_MB
scales the large files.
"""

from __future__ import annotations

import io
import logging
import os
import pickle
import shutil
import statistics
import struct
import tempfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

TOTAL_MB = int(os.environ.get("BENCH_SCAN_MB", "500"))
REPEAT = 3
TENSORS_IN_ZIP = 64


def _random_floats(megabytes: float) -> np.ndarray:
    return np.frombuffer(os.urandom(int(megabytes * 1024 * 1024) // 4 * 4), dtype=np.float32)


def _torch_data_pkl(sizes: list[int]) -> bytes:
    """The ``archive/data.pkl`` torch.save writes for an OrderedDict of float tensors,
    written opcode by opcode (torch is not a dependency)."""

    def text(value: str) -> bytes:
        raw = value.encode()
        return pickle.BINUNICODE + struct.pack("<I", len(raw)) + raw

    def integer(value: int) -> bytes:
        return pickle.BININT + struct.pack("<i", value)

    def ordered_dict() -> bytes:
        return pickle.GLOBAL + b"collections\nOrderedDict\n" + pickle.EMPTY_TUPLE + pickle.REDUCE

    out = [pickle.PROTO + b"\x02", ordered_dict(), pickle.MARK]
    for key, size in enumerate(sizes):
        storage = [pickle.MARK, text("storage"), pickle.GLOBAL + b"torch\nFloatStorage\n"]
        storage += [text(str(key)), text("cpu"), integer(size), pickle.TUPLE, pickle.BINPERSID]
        out += [text(f"layer{key}.weight"), pickle.GLOBAL + b"torch._utils\n_rebuild_tensor_v2\n"]
        out += [pickle.MARK, *storage, integer(0), pickle.MARK, integer(size), pickle.TUPLE]
        out += [pickle.MARK, integer(1), pickle.TUPLE, pickle.NEWFALSE, ordered_dict()]
        out += [pickle.TUPLE, pickle.REDUCE]
    out += [pickle.SETITEMS, pickle.STOP]
    return b"".join(out)


def _make_model(root: Path, scale: float) -> None:
    from safetensors.numpy import save_file

    (root / "pickles").mkdir()
    for shard, megabytes in ((1, 160), (2, 120)):
        tensors = {f"w{i}": _random_floats(megabytes * scale / 4) for i in range(4)}
        save_file(tensors, str(root / f"model-0000{shard}-of-00002.safetensors"))
    np.save(root / "embeddings.npy", _random_floats(60 * scale))
    arrays = {f"coef{i}": _random_floats(10 * scale) for i in range(8)}
    (root / "pickles" / "model.pkl").write_bytes(pickle.dumps(arrays, protocol=5))
    vocab = {f"token{i}": i for i in range(250_000)} | {"scores": [i / 7 for i in range(150_000)]}
    (root / "pickles" / "vocab.pkl").write_bytes(pickle.dumps(vocab, protocol=4))
    storage = _random_floats(80 * scale / TENSORS_IN_ZIP)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("archive/data.pkl", _torch_data_pkl([storage.size] * TENSORS_IN_ZIP))
        for key in range(TENSORS_IN_ZIP):
            archive.writestr(f"archive/data/{key}", storage.tobytes())
        archive.writestr("archive/version", "3\n")
    (root / "pickles" / "pytorch_model.bin").write_bytes(buffer.getvalue())
    (root / "MLmodel").write_text("artifact_path: model\nflavors:\n  python_function: {}\n")
    (root / "requirements.txt").write_text("mlflow==3.17.2\nnumpy==2.4.6\n")
    (root / "conda.yaml").write_text("channels: [conda-forge]\ndependencies: [python=3.11]\n")
    (root / "tokenizer.json").write_text(
        '{"vocab": {' + ",".join(f'"t{i}": {i}' for i in range(400_000)) + "}}"
    )


def _files(root: Path) -> list[Path]:
    return sorted(path for path in root.rglob("*") if path.is_file())


def _picklescan_alone(root: Path) -> None:
    from picklescan.scanner import scan_file_path  # type: ignore[import-untyped]

    for path in _files(root):
        scan_file_path(str(path))


def _registry(root: Path) -> None:
    from provenance.model_scan import scan_directory

    report = scan_directory(root)
    assert report.files


def _median(fn: Callable[[Path], None], root: Path) -> float:
    timings = []
    for _ in range(REPEAT):
        started = time.perf_counter()
        fn(root)
        timings.append(time.perf_counter() - started)
    return statistics.median(timings)


def _line(label: str, root: Path) -> None:
    size = sum(path.stat().st_size for path in _files(root)) / 1024 / 1024
    theirs = _median(_picklescan_alone, root)
    ours = _median(_registry, root)
    print(f"  {label:<18} {size:7.0f} MiB  picklescan alone {theirs:6.2f} s   "
          f"registry scan {ours:6.2f} s  = {ours / theirs:.2f}x (target <= 2.5x)")  # fmt: skip


def run() -> None:
    # Both scanners log every non-pickle file they are shown; that is not what is measured.
    for name in ("picklescan", "modelscan"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    root = Path(tempfile.mkdtemp(prefix="bench-scan-"))
    try:
        _make_model(root, TOTAL_MB / 500)
        _picklescan_alone(root)  # warm the page cache and imports
        _registry(root)
        print(f"{len(_files(root))} files, {os.cpu_count()} cores, median of {REPEAT}:")
        _line("mixed model", root)
        _line("pickles only", root / "pickles")
    finally:
        shutil.rmtree(root)
