"""OpenSSF ``model_signing`` manifests and ``model.sig`` signatures for model versions.

The registry hashes every model version it governs and signs the result in the
format of the OpenSSF ``model_signing`` package (v1.x), so that anyone can
check a downloaded model with the stock tooling (``model_signing verify key``)
and the registry's public key, without trusting this code.

What ``model_signing`` 1.1.1 does with its default ``hashing.Config()``, which
this module reproduces bit for bit (the tests compare against it):

* Serialization method ``"files"``: one plain **SHA-256 of each file's whole
  content** (not sharded, not BLAKE), so a single file cannot be hashed in
  parallel; the parallelism available is *across* files.
* Every regular file under the model directory, hidden files included, named
  by its path relative to the model directory in POSIX form (``sub/w.bin``).
  If the model path is itself a file, the only entry is named ``"."``.
* Ignored by default: ``.git``, ``.github``, ``.gitignore`` and
  ``.gitattributes`` at the *top level only* (``sub/.gitignore`` is hashed),
  plus whatever the caller lists. Symlinks anywhere (even inside an ignored
  directory) and special files are rejected.
* The entries are ordered by ``pathlib.PurePosixPath``, i.e. component by
  component (``a/b`` sorts before ``a.txt``, unlike a plain string sort).
* The **root digest** is SHA-256 over the concatenated raw 32-byte file
  digests in that order. File names are *not* part of it: the names are
  protected by the signature over the full resource list, not by the root.
* The signed document is an in-toto Statement v1 whose single subject is
  ``{"name": <model directory name>, "digest": {"sha256": <root digest>}}``,
  with predicate type ``https://model_signing/signature/v1.0`` and a predicate
  ``{"serialization": {...}, "resources": [{"name", "algorithm", "digest"}]}``,
  wrapped in DSSE inside a Sigstore bundle v0.3 JSON (``model.sig``).

Signing reuses the manifest computed here instead of hashing the model a
second time: the manifest is converted into ``model_signing``'s own
``Manifest`` and signed with its own ``Payload`` and elliptic-curve signer.
Those two classes live in ``model_signing._signing`` (private); the public
``signing.Config`` API can only sign a directory it hashes itself and needs the
private key as a file. The dependency is pinned (``model-signing==1.1.1``) and
the tests verify every signature with the public ``verifying`` API, so a
change in those internals fails the tests rather than producing bad
signatures.

This module deliberately has no Django imports: the Celery task, the views and
offline tools can all use it.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import os
import pathlib
import stat
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from model_signing import manifest as ms_manifest
from model_signing import verifying as ms_verifying
from model_signing._hashing import hashing as ms_digest
from model_signing._signing import sign_ec_key as ms_ec_key
from model_signing._signing import signing as ms_signing

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "GIT_IGNORED_PATHS",
    "PREDICATE_TYPE",
    "SIGNATURE_FILENAME",
    "FileDigest",
    "ModelManifest",
    "ModelManifestError",
    "ModelSignatureError",
    "compute_manifest",
    "sign_model",
    "verify_model",
]

#: Read size per ``readinto``. Large enough that per-call overhead and GIL hand-offs
#: are negligible (hashlib drops the GIL while hashing each chunk); small enough to
#: stay in a core's L2 cache (1 MiB and up on the servers this runs on), so the hash
#: reads from the cache what ``readinto`` has just copied there. 8 MiB chunks went
#: to memory and back: 10% slower on two cores (``make bench``, manifest).
DEFAULT_CHUNK_SIZE: Final = 1024 * 1024

#: Top-level paths ``model_signing`` always leaves out (its verifier ignores them
#: unconditionally, so a signature covering them could never verify).
GIT_IGNORED_PATHS: Final = (".git", ".gitattributes", ".github", ".gitignore")

#: Conventional name of the signature file, as written by ``model_signing sign``.
SIGNATURE_FILENAME: Final = "model.sig"

#: Predicate type of the signed in-toto statement.
PREDICATE_TYPE: Final = "https://model_signing/signature/v1.0"

_ALGORITHM: Final = "sha256"
_HEX_DIGEST_LEN: Final = 64
_MANIFEST_JSON_VERSION: Final = 1
# Minimum time between two progress callbacks: the callback typically writes to
# the Celery result backend, which must not be hammered once per chunk.
_PROGRESS_INTERVAL_S: Final = 0.25

ProgressCallback = Callable[[int, int], None]


class ModelManifestError(ValueError):
    """The model directory cannot be hashed the way ``model_signing`` would.

    Raised for symlinks, special files, files that change while being hashed and
    inconsistent manifests. A ``ValueError`` because ``model_signing`` raises
    ``ValueError`` for the same conditions.
    """


class ModelSignatureError(ValueError):
    """A ``model.sig`` does not vouch for the model with the given public key.

    ``kind`` lets callers (API responses, audit events) tell the cases apart
    without parsing the message: ``"malformed"`` (not a readable model_signing
    bundle), ``"wrong_key"`` (signed by a different key), ``"bad_signature"``
    (the DSSE signature does not verify: tampered bundle) or
    ``"content_mismatch"`` (the signature is genuine but the files differ).
    """

    MALFORMED: Final = "malformed"
    WRONG_KEY: Final = "wrong_key"
    BAD_SIGNATURE: Final = "bad_signature"
    CONTENT_MISMATCH: Final = "content_mismatch"

    def __init__(self, reason: str, *, kind: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.kind = kind


def _is_hex_digest(value: str) -> bool:
    return len(value) == _HEX_DIGEST_LEN and all(c in "0123456789abcdef" for c in value)


@dataclass(frozen=True, slots=True)
class FileDigest:
    """One manifest entry: a model file, its size and the SHA-256 of its content.

    ``path`` is relative to the model directory, POSIX separators, exactly the
    ``name`` ``model_signing`` records in the signature's resources.
    """

    path: str
    size: int
    sha256: str

    def __post_init__(self) -> None:
        if not self.path or self.size < 0 or not _is_hex_digest(self.sha256):
            raise ModelManifestError(f"invalid manifest entry {self!r}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (the same keys as the attributes)."""
        return {"path": self.path, "size": self.size, "sha256": self.sha256}


def _sort_key(item: FileDigest) -> pathlib.PurePosixPath:
    # model_signing sorts its manifest keys as PurePosixPath objects (component
    # by component); a plain string sort would put "a.txt" before "a/b" and
    # change the root digest.
    return pathlib.PurePosixPath(item.path)


def _root_digest(files: Iterable[FileDigest]) -> str:
    hasher = hashlib.sha256()
    for item in files:
        hasher.update(bytes.fromhex(item.sha256))
    return hasher.hexdigest()


@dataclass(frozen=True, slots=True)
class ModelManifest:
    """The hashed state of a model directory, as ``model_signing`` would sign it.

    ``files`` is in ``model_signing``'s canonical order and ``root_digest`` is
    the subject digest of the signed statement (the "model digest" the registry
    shows and stores). ``ignore_paths`` records which top-level-relative paths
    were left out, because the signature must tell verifiers to leave them out
    too. Construction validates all of this, so a ``ModelManifest`` read back
    from JSON or built by hand cannot carry a root digest that does not match
    its files.
    """

    files: tuple[FileDigest, ...]
    root_digest: str
    ignore_paths: tuple[str, ...] = GIT_IGNORED_PATHS

    def __post_init__(self) -> None:
        paths = [f.path for f in self.files]
        if len(set(paths)) != len(paths):
            raise ModelManifestError("manifest lists a file more than once")
        if list(self.files) != sorted(self.files, key=_sort_key):
            raise ModelManifestError("manifest files are not in model_signing's order")
        if self.root_digest != _root_digest(self.files):
            raise ModelManifestError("root digest does not match the file digests")

    @classmethod
    def from_files(
        cls, files: Iterable[FileDigest], *, ignore_paths: Iterable[str] = GIT_IGNORED_PATHS
    ) -> ModelManifest:
        """Builds a manifest from unordered entries, computing the root digest."""
        ordered = tuple(sorted(files, key=_sort_key))
        return cls(
            files=ordered,
            root_digest=_root_digest(ordered),
            ignore_paths=tuple(sorted(set(ignore_paths))),
        )

    @property
    def total_size(self) -> int:
        """Bytes hashed, i.e. the size of the signed part of the model."""
        return sum(f.size for f in self.files)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, e.g. for a Celery result or a JSONField."""
        return {
            "version": _MANIFEST_JSON_VERSION,
            "algorithm": _ALGORITHM,
            "root_digest": self.root_digest,
            "ignore_paths": list(self.ignore_paths),
            "files": [f.to_dict() for f in self.files],
        }

    def to_json(self) -> str:
        """Canonical compact JSON (sorted keys): equal manifests give equal text."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelManifest:
        """Inverse of :meth:`to_dict`; validates like the constructor."""
        if data.get("version") != _MANIFEST_JSON_VERSION or data.get("algorithm") != _ALGORITHM:
            raise ModelManifestError("unsupported manifest version or algorithm")
        try:
            files = tuple(
                FileDigest(path=str(f["path"]), size=int(f["size"]), sha256=str(f["sha256"]))
                for f in data["files"]
            )
            return cls(
                files=files,
                root_digest=str(data["root_digest"]),
                ignore_paths=tuple(str(p) for p in data["ignore_paths"]),
            )
        except ModelManifestError:
            raise
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelManifestError(f"malformed manifest: {exc!r}") from exc

    @classmethod
    def from_json(cls, text: str) -> ModelManifest:
        """Inverse of :meth:`to_json`."""
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ModelManifestError("malformed manifest: not a JSON object")
        return cls.from_dict(data)


# --------------------------------------------------------------------------- hashing


def _normalise_ignores(
    model_dir: pathlib.Path, ignore: Iterable[str | os.PathLike[str]]
) -> set[str]:
    """Turns caller paths into model-relative POSIX paths, as model_signing does.

    Relative paths are taken relative to the model directory; absolute paths
    count only if they lie inside it; anything escaping it is dropped (it could
    not match a model file anyway).
    """
    result = set(GIT_IGNORED_PATHS)
    root = model_dir.resolve()
    for raw in ignore:
        path = pathlib.Path(raw)
        if path.is_absolute():
            try:
                path = path.resolve().relative_to(root)
            except ValueError:
                continue
        posix = pathlib.PurePosixPath(*path.parts)
        if ".." in posix.parts or str(posix) == ".":
            continue
        result.add(str(posix))
    return result


def _is_ignored(rel: pathlib.PurePosixPath, ignored: Iterable[pathlib.PurePosixPath]) -> bool:
    return any(rel.is_relative_to(ig) for ig in ignored)


def _check_entry(path: pathlib.Path, st: os.stat_result) -> None:
    if stat.S_ISLNK(st.st_mode):
        raise ModelManifestError(
            f"{path} is a symlink; model_signing refuses symlinks, so it cannot be signed"
        )
    if not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)):
        raise ModelManifestError(f"{path} is neither a regular file nor a directory")


def _walk(model_dir: pathlib.Path) -> Iterator[tuple[pathlib.PurePosixPath, pathlib.Path, int]]:
    """Yields (relative path, path, size) for every regular file.

    Mirrors ``model_signing``'s traversal (``glob("**/*")`` plus checks): every
    entry is checked *before* ignore rules apply, so a symlink inside ``.git``
    is rejected here exactly as ``model_signing`` would reject it at
    verification time.
    """
    root_st = model_dir.lstat()
    _check_entry(model_dir, root_st)
    if stat.S_ISREG(root_st.st_mode):
        yield pathlib.PurePosixPath("."), model_dir, root_st.st_size
        return
    stack: list[tuple[pathlib.PurePosixPath, pathlib.Path]] = [(pathlib.PurePosixPath(), model_dir)]
    while stack:
        rel_dir, directory = stack.pop()
        with os.scandir(directory) as entries:
            for entry in entries:
                path = directory / entry.name
                rel = rel_dir / entry.name
                st = entry.stat(follow_symlinks=False)
                _check_entry(path, st)
                if stat.S_ISDIR(st.st_mode):
                    stack.append((rel, path))
                else:
                    yield rel, path, st.st_size


class _Progress:
    """Byte counter shared by the hashing threads, read by the calling thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._done = 0

    def add(self, n: int) -> None:
        with self._lock:
            self._done += n

    @property
    def done(self) -> int:
        with self._lock:
            return self._done


class _Cancelled(Exception):
    """Internal: another file failed or the caller aborted; stop reading."""


_OPEN_FLAGS: Final = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


def _hash_file(
    path: pathlib.Path,
    buffer: memoryview,
    progress: _Progress,
    stop: threading.Event,
) -> tuple[str, int]:
    """SHA-256 of one file, streamed through a reusable buffer.

    ``readinto`` a per-thread buffer avoids allocating (and page-faulting) a new
    bytes object per chunk, and ``hashlib`` releases the GIL while it hashes a
    chunk, so threads give real multi-core speed-up across files.
    ``O_NOFOLLOW`` closes the window in which a checked file could be swapped
    for a symlink; a size change during hashing is an error because the
    resulting digest would describe no real state of the file.
    """
    fd = os.open(path, _OPEN_FLAGS)
    with open(fd, "rb", buffering=0, closefd=True) as handle:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ModelManifestError(f"{path} is not a regular file")
        if hasattr(os, "posix_fadvise"):
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)
        hasher = hashlib.sha256()
        size = 0
        while n := handle.readinto(buffer):
            hasher.update(buffer[:n])
            size += n
            progress.add(n)
            if stop.is_set():
                raise _Cancelled
    if size != st.st_size:
        raise ModelManifestError(f"{path} changed size while it was being hashed")
    return hasher.hexdigest(), size


def _default_workers() -> int:
    """More threads than cores, on purpose.

    A file's SHA-256 cannot be split, so with one thread per core five equal files on two cores
    take three files' time. With a thread per file the kernel shares the cores among all of
    them and the whole model takes five halves: the limit of two cores.
    """
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, 4 * (cores or 1))


def compute_manifest(
    model_dir: pathlib.Path,
    *,
    workers: int | None = None,
    on_progress: ProgressCallback | None = None,
    ignore: Iterable[str | os.PathLike[str]] = (),
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> ModelManifest:
    """Hashes a model directory into the manifest ``model_signing`` would build.

    Files are hashed concurrently by ``workers`` threads (default: the CPUs this
    process may run on), largest first so that one big file does not end up
    last on an otherwise idle pool. A single file is hashed by one thread:
    ``model_signing``'s default digest is a plain SHA-256 of the whole file,
    which is inherently sequential.

    ``on_progress(done_bytes, total_bytes)`` is called from the *calling*
    thread (never from a worker, so it may use thread-bound resources such as a
    Django DB connection or a Celery task's ``update_state``): once with
    ``done_bytes == 0``, then at most every 0.25 s, and finally with
    ``done_bytes == total_bytes``. If it raises, hashing stops and the
    exception propagates, which makes it the cancellation hook.

    ``ignore`` lists paths relative to ``model_dir`` (files or whole
    directories) to leave out, in addition to ``model_signing``'s git paths;
    they are recorded in the manifest so that signing can tell verifiers.

    Raises:
        ModelManifestError: symlinks, special files, or a file changed size.
        OSError: the directory or a file could not be read.
    """
    model_dir = pathlib.Path(model_dir)
    if workers is not None and workers < 1:
        raise ValueError("workers must be at least 1")
    if chunk_size < 1:
        raise ValueError("chunk_size must be positive")

    ignored = _normalise_ignores(model_dir, ignore)
    ignored_paths = [pathlib.PurePosixPath(p) for p in ignored]
    todo = [
        (rel, path, size)
        for rel, path, size in _walk(model_dir)
        if str(rel) == "." or not _is_ignored(rel, ignored_paths)
    ]
    todo.sort(key=lambda entry: entry[2], reverse=True)
    total = sum(size for _, _, size in todo)
    pool_size = max(1, min(workers or _default_workers(), len(todo)))

    progress = _Progress()
    stop = threading.Event()
    local = threading.local()

    def run(path: pathlib.Path) -> tuple[str, int]:
        buffer: memoryview | None = getattr(local, "buffer", None)
        if buffer is None:
            buffer = memoryview(bytearray(chunk_size))
            local.buffer = buffer
        return _hash_file(path, buffer, progress, stop)

    results: dict[pathlib.PurePosixPath, tuple[str, int]] = {}
    reported = 0
    if on_progress is not None:
        on_progress(0, total)
    with concurrent.futures.ThreadPoolExecutor(
        max_workers=pool_size, thread_name_prefix="model-manifest"
    ) as executor:
        futures = {executor.submit(run, path): rel for rel, path, _ in todo}
        pending: set[concurrent.futures.Future[tuple[str, int]]] = set(futures)
        try:
            while pending:
                done, pending = concurrent.futures.wait(
                    pending,
                    timeout=_PROGRESS_INTERVAL_S,
                    return_when=concurrent.futures.FIRST_EXCEPTION,
                )
                for future in done:
                    results[futures[future]] = future.result()
                current = progress.done
                if on_progress is not None and pending and current != reported:
                    on_progress(min(current, total), total)
                    reported = current
        except BaseException:
            stop.set()
            for future in pending:
                future.cancel()
            raise
    if on_progress is not None and reported != total:
        on_progress(total, total)

    return ModelManifest.from_files(
        (
            FileDigest(path=str(rel), size=size, sha256=digest)
            for rel, (digest, size) in results.items()
        ),
        ignore_paths=ignored,
    )


# --------------------------------------------------------------------------- signing


def _model_name(model_dir: pathlib.Path) -> str:
    # Same rule as model_signing: the subject name is the directory's name.
    name = model_dir.name
    if not name or name == "..":
        name = model_dir.resolve().name
    return name


def _to_ms_manifest(model_dir: pathlib.Path, manifest: ModelManifest) -> ms_manifest.Manifest:
    """Our manifest as ``model_signing``'s, with the same serialization record."""
    serialization_type = ms_manifest.SerializationType.from_args(
        {
            "method": "files",
            "hash_type": _ALGORITHM,
            "allow_symlinks": False,
            "ignore_paths": list(manifest.ignore_paths),
        }
    )
    items = [
        serialization_type.new_item(f.path, ms_digest.Digest(_ALGORITHM, bytes.fromhex(f.sha256)))
        for f in manifest.files
    ]
    return ms_manifest.Manifest(_model_name(model_dir), items, serialization_type)


class _InMemoryKeySigner(ms_ec_key.Signer):
    """``model_signing``'s EC key signer, fed a key object instead of a file path.

    The stock signer only loads keys from a path; writing the registry's signing
    key to a temporary file just to read it back would leave it on disk. Only
    ``__init__`` is replaced: signing and the bundle layout are model_signing's.
    """

    def __init__(self, private_key: ec.EllipticCurvePrivateKey) -> None:
        ms_ec_key._check_supported_ec_key(private_key.public_key())
        self._private_key = private_key


def _load_private_key(private_key_pem: bytes, password: bytes | None) -> ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key(private_key_pem, password=password)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise TypeError(
            "model_signing key signing needs an elliptic-curve key (P-256, P-384 or P-521), "
            f"got {type(key).__name__}"
        )
    return key


def _relative_inside(model_dir: pathlib.Path, path: pathlib.Path) -> str | None:
    try:
        rel = path.resolve().relative_to(model_dir.resolve())
    except ValueError:
        return None
    return pathlib.PurePosixPath(*rel.parts).as_posix()


def sign_model(
    model_dir: pathlib.Path,
    private_key_pem: bytes,
    signature_path: pathlib.Path,
    *,
    manifest: ModelManifest | None = None,
    password: bytes | None = None,
) -> None:
    """Writes ``signature_path`` (a ``model.sig``) for the model in ``model_dir``.

    Pass the ``manifest`` already computed by :func:`compute_manifest` (e.g. by
    the Celery task that streamed the artifacts) to sign it without hashing the
    model again; without it the directory is hashed here. The private key is
    an unencrypted (or ``password``-protected) PEM elliptic-curve key, P-256,
    P-384 or P-521 -- the curves ``model_signing`` accepts.

    When the signature is written inside the model directory its path is added
    to the manifest's ignored paths, as the ``model_signing`` CLI does (its
    Python ``signing.Config`` does not, and then its own verification fails on
    the "extra" ``model.sig``).

    Raises:
        ValueError: a precomputed manifest covers the signature's own path, or
            the key's curve is unsupported.
        TypeError: the key is not an elliptic-curve key.
    """
    model_dir = pathlib.Path(model_dir)
    signature_path = pathlib.Path(signature_path)
    key = _load_private_key(private_key_pem, password)
    sig_rel = _relative_inside(model_dir, signature_path)

    if manifest is None:
        manifest = compute_manifest(model_dir, ignore=[sig_rel] if sig_rel else [])
    elif sig_rel is not None:
        if any(f.path == sig_rel for f in manifest.files):
            raise ValueError(f"the manifest covers {sig_rel}, which the signature would overwrite")
        manifest = ModelManifest.from_files(
            manifest.files, ignore_paths=[*manifest.ignore_paths, sig_rel]
        )

    payload = ms_signing.Payload(_to_ms_manifest(model_dir, manifest))
    signature = _InMemoryKeySigner(key).sign(payload)
    signature.write(signature_path)


# ---------------------------------------------------------------------- verification


def _classify(exc: BaseException) -> tuple[str, str]:
    """Maps ``model_signing``'s exceptions to a kind and a human reason."""
    message = str(exc)
    if isinstance(exc, InvalidSignature):
        return (
            ModelSignatureError.BAD_SIGNATURE,
            "the signature does not verify: the signed statement was altered "
            "or signed by another key",
        )
    if message.startswith("Key mismatch"):
        return (
            ModelSignatureError.WRONG_KEY,
            "the model was signed by a different key than the registry's public key",
        )
    if message.startswith("Cannot use"):
        return (
            ModelSignatureError.CONTENT_MISMATCH,
            f"the model directory contains a path model_signing cannot verify: {message}",
        )
    if message.startswith("Signature mismatch"):
        return (
            ModelSignatureError.CONTENT_MISMATCH,
            f"the model files do not match the signed manifest: {message}",
        )
    return ModelSignatureError.MALFORMED, f"unusable model signature: {message or exc!r}"


def verify_model(
    model_dir: pathlib.Path, signature_path: pathlib.Path, public_key_pem: bytes
) -> None:
    """Checks ``model_dir`` against ``signature_path`` with ``model_signing`` itself.

    Verification deliberately runs the library's public API (its own
    re-hashing and comparison, honouring the ignored paths recorded in the
    signature) rather than this module's hashing: an independent check is the
    point, and it is exactly what a user running ``model_signing verify key``
    gets.

    Raises:
        ModelSignatureError: the signature does not vouch for these files with
            this key; ``kind`` says why.
        ValueError, TypeError: ``public_key_pem`` is not a PEM elliptic-curve
            public key (a configuration problem, not a verdict on the model).
        FileNotFoundError: the model directory or the signature file is missing
            (an operational problem, not evidence of tampering).
    """
    model_dir = pathlib.Path(model_dir)
    signature_path = pathlib.Path(signature_path)
    for required in (model_dir, signature_path):
        if not required.exists():
            raise FileNotFoundError(f"{required} does not exist")
    public_key = serialization.load_pem_public_key(public_key_pem)
    if not isinstance(public_key, ec.EllipticCurvePublicKey):
        raise TypeError(f"expected an elliptic-curve public key, got {type(public_key).__name__}")
    # model_signing reads the public key from a path; a public key on disk is harmless.
    with tempfile.TemporaryDirectory(prefix="model-verify-") as tmp:
        key_path = pathlib.Path(tmp) / "key.pub"
        key_path.write_bytes(public_key_pem)
        try:
            config = ms_verifying.Config()  # type: ignore[no-untyped-call]
            config.use_elliptic_key_verifier(public_key=key_path).verify(model_dir, signature_path)
        except (ValueError, KeyError, TypeError, InvalidSignature) as exc:
            kind, reason = _classify(exc)
            raise ModelSignatureError(reason, kind=kind) from exc
