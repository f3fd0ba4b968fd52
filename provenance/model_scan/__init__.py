"""Static scan of model artifacts for embedded code, fail-closed (issue #5).

A model file can run code the moment it is loaded: a pickle calls whatever its
``GLOBAL``/``STACK_GLOBAL``/``INST`` opcodes import (``posix.system``,
``builtins.exec``, ``runpy._run_code`` ...), a Keras ``Lambda`` layer carries
marshalled bytecode, a TensorFlow graph can read and write files. This module
inspects every file of a model directory **without loading it** and returns a
:class:`ScanReport`, which the registry signs as an in-toto test-result
attestation (:meth:`ScanReport.to_test_result_predicate`).

How one file is judged
----------------------
1. **Its format is recognised from its content** (magic bytes, header parsing),
   never from its name: ``safetensors`` (8-byte length + JSON header whose
   offsets must account for every byte of the file), ``onnx`` (protobuf
   ``ModelProto`` top-level fields), ``numpy`` (``.npy`` header; an object dtype
   makes it ``numpy-pickle``), ``pickle`` (see below), ``pytorch-legacy``,
   zip archives (``pytorch-zip``, ``keras``, ``zip``), ``hdf5``,
   ``tensorflow-savedmodel``, other archives, native code, source code, text.
   Every file is *also* tried as a pickle from byte 0: a file that parses as a
   complete pickle is a pickle whatever else it looks like (a pickle renamed
   ``.safetensors`` is a pickle; protocol-0 pickles are plain ASCII and would
   otherwise pass as text), and a file that is both, say, a zip and a loadable
   pickle gets a HIGH ``polyglot`` finding.
2. **Formats that cannot execute code** (safetensors, ONNX, plain ``.npy``,
   raw tensor storages inside a PyTorch zip, text such as ``MLmodel``,
   ``conda.yaml``, ``requirements.txt``, empty files) are ``clean`` after that
   check; large ones cost only their header.
3. **Formats that can** are examined by independent scanners, each in its own
   thread with a timeout:

   * ``modelscan`` through its per-format scanner classes, fed with the format
     detected here. (``ModelScan.scan(path)`` picks scanners by file
     extension, so it would skip a renamed pickle, and it rejects nested zips.)
   * ``picklescan`` (``scan_pickle_bytes`` / ``scan_numpy`` / ``scan_pytorch``).
   * ``secmlops-model-scan``, this module: a walk over the pickle opcodes with
     ``pickletools.genops`` (it never executes anything) and a small abstract
     stack, so that ``STACK_GLOBAL`` arguments fetched back from the memo are
     resolved. Each import is checked against a denylist (CRITICAL/HIGH) and an
     allowlist; an import on neither is a MEDIUM ``unlisted-import`` finding.
     Denylists always lag behind attackers; the allowlist is what still stops
     an operator nobody listed.

   fickling was evaluated and left out: on benign numpy pickles it reported
   ``LIKELY_UNSAFE`` / ``LIKELY_OVERTLY_MALICIOUS`` and it ran 3-13x slower than
   picklescan.
4. **Archives** are opened (never extracted to disk) and every member is judged
   the same way, recursively, up to ``max_archive_depth``. A member's path is
   ``outer.zip!/inner.zip!/data.pkl``. A container's verdict includes its
   members'.

Verdicts, worst first: ``unsafe`` (a CRITICAL or HIGH finding: a denylisted,
unresolvable or polyglot import, a Keras Lambda), ``unknown`` (the file could
not be vouched for), ``warning`` (it can execute code but nothing was found:
every pickle is at least a warning), ``clean``. The report's verdict is the worst
file's; an empty directory is ``unknown``.

Fail-closed, under every policy: a scanner error, a timeout, a malformed or
truncated pickle, an archive nested beyond the limit, a member or file over the
size limit, an encrypted member, an archive format that is not opened (gzip,
tar, 7z ...), a symlink, or fewer completed scanners than ``min_scanners`` on an
executable file, each make the file ``unknown``. The *strict* policy (default)
also makes unrecognised data, source code / native code and MEDIUM findings
``unknown``; the *lenient* policy makes them ``warning`` and accepts one
scanner. No policy can turn any of these into ``clean``.

Known consequences: a joblib file that embeds raw array buffers between pickle
opcodes does not parse as a pickle stream and ends ``unknown``, as does the
raw external-data file of a large ONNX model under the strict policy. Storages
inside a PyTorch zip (``archive/data/<n>``) are raw bytes ``torch.load`` never
unpickles; they are listed as ``tensor-storage`` without being read.

Timeouts: a Python thread cannot be killed. When a scanner overruns, the file
is judged ``unknown`` at once and the streams handed to that scanner are
closed, so its next read fails and the thread ends; the Celery task's hard time
limit is the outer bound. Without ``h5py``/``tensorflow`` modelscan cannot read
HDF5, Keras or SavedModel files, so those end ``unknown`` (fail-closed).

The report holds no timestamps or absolute paths: scanning the same files with
the same scanners and policy gives the same report. No Django imports.

Modules, each importing only those above it: ``enums`` (scanner names, verdicts,
formats), ``rules`` (the import allowlist and denylist), ``results`` (findings,
policy, report), ``blobs`` (the bytes scanners read), ``pickles`` (the opcode walk),
``sniffing`` (format detection), ``scanners`` (modelscan, picklescan), ``scan`` (the
judgement of each file and archive member) and ``entry_points``.
"""

from __future__ import annotations

from provenance.model_scan.entry_points import scan_directory, scan_file
from provenance.model_scan.enums import (
    MODELSCAN,
    PICKLESCAN,
    REGISTRY_SCANNER,
    TEST_RESULT_PREDICATE_TYPE,
    Format,
    Severity,
    Verdict,
)
from provenance.model_scan.results import (
    FileResult,
    Finding,
    ScanFailure,
    ScannerInfo,
    ScanPolicy,
    ScanReport,
    SkippedScan,
    scanner_versions,
)
from provenance.model_scan.rules import DEFAULT_ALLOWED_IMPORTS

__all__ = [
    "DEFAULT_ALLOWED_IMPORTS",
    "MODELSCAN",
    "PICKLESCAN",
    "REGISTRY_SCANNER",
    "TEST_RESULT_PREDICATE_TYPE",
    "FileResult",
    "Finding",
    "Format",
    "ScanFailure",
    "ScanPolicy",
    "ScanReport",
    "ScannerInfo",
    "Severity",
    "SkippedScan",
    "Verdict",
    "scan_directory",
    "scan_file",
    "scanner_versions",
]
