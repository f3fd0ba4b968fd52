"""Which imports a pickle may make: the default allowlist and the denylist by dotted prefix.

The rules' digest and revision make up the version of this registry's own scanner, so
that a change of rules calls for a re-scan.
"""

from __future__ import annotations

import _compat_pickle
import hashlib
from collections.abc import Iterator
from typing import Any, Final

import rfc8785

from provenance.model_scan.enums import Severity


def _words(text: str, prefix: str = "") -> tuple[str, ...]:
    return tuple(f"{prefix}{word}" for word in text.split())


#: Imports an ordinary model pickle needs (numpy arrays, torch tensors, builtin
#: containers). Exact ``module.name``; a policy may add ``package.*`` prefixes.
DEFAULT_ALLOWED_IMPORTS: Final = frozenset(
    {
        *_words("bool bytearray bytes complex dict float frozenset int list", "builtins."),
        *_words("object range set slice str tuple", "builtins."),
        *_words("Counter OrderedDict defaultdict deque", "collections."),
        "copyreg._reconstructor",
        "_codecs.encode",
        *_words("date datetime time timedelta timezone", "datetime."),
        "numpy.dtype",
        "numpy.ndarray",
        *_words("multiarray._reconstruct multiarray.scalar numeric._frombuffer", "numpy.core."),
        *_words("multiarray._reconstruct multiarray.scalar numeric._frombuffer", "numpy._core."),
        *_words("_rebuild_parameter _rebuild_tensor_v2", "torch._utils."),
        "torch.Size",
        "torch.device",
        *(
            f"torch.{kind}Storage"
            for kind in _words("BFloat16 Bool Byte Char Double Float Half Int Long Short")
        ),
    }
)

# Known-dangerous imports by dotted prefix: a module name covers all it contains.
_DENYLIST: Final[tuple[tuple[Severity, str, tuple[str, ...]], ...]] = (
    (
        Severity.CRITICAL,
        "runs code or commands",
        (
            *_words("__import__ apply breakpoint compile delattr eval exec", "builtins."),
            *_words("execfile getattr globals input locals reload setattr vars", "builtins."),
            *_words("os posix nt subprocess _posixsubprocess sys runpy pty importlib imp"),
            *_words("code codeop ctypes _ctypes marshal multiprocessing signal pdb bdb"),
            *_words("cProfile profile timeit trace pydoc pkgutil asyncio doctest"),
            *_words("ensurepip pip venv distutils setuptools idlelib lib2to3 test"),
            *_words("_osx_support _aix_support _pyrepl cloudpickle dill"),
            *_words("attrgetter itemgetter methodcaller", "operator."),
            *_words("attrgetter itemgetter methodcaller", "_operator."),
            *_words("CodeType FunctionType LambdaType MethodType ModuleType", "types."),
            *_words("partial reduce", "functools."),
            "uuid._get_command_stdout",
            *_words("testing f2py distutils ctypeslib", "numpy."),
            *_words("jit _inductor _dynamo fx hub utils.cpp_extension", "torch."),
            "logging.config",
        ),
    ),
    (
        Severity.CRITICAL,
        "deserialises further data, which this scan cannot see",
        (
            *_words("pickle _pickle shelve joblib pandas.read_pickle pandas.io.pickle"),
            *_words("numpy.load numpy.lib.npyio torch.load torch.serialization"),
            *_words("load unsafe_load", "yaml."),
        ),
    ),
    (
        Severity.HIGH,
        "reads or writes files",
        _words("builtins.open io _io shutil tempfile logging.FileHandler"),
    ),
    (
        Severity.HIGH,
        "opens network connections or programs",
        (
            *_words("socket _socket ssl http urllib urllib2 httplib ftplib smtplib poplib"),
            *_words("imaplib telnetlib xmlrpc socketserver requests aiohttp webbrowser"),
            "logging.handlers",
        ),
    ),
)
_DENIED: Final[dict[str, tuple[Severity, str]]] = {
    prefix: (severity, reason) for severity, reason, prefixes in _DENYLIST for prefix in prefixes
}
# Bumped when the rules change in a way the digest below cannot see (the code).
_RULES_REVISION: Final = 1


def _rules_digest() -> str:
    rules: dict[str, Any] = {
        "revision": _RULES_REVISION,
        "denied": {prefix: list(value) for prefix, value in _DENIED.items()},
        "allowed": sorted(DEFAULT_ALLOWED_IMPORTS),
    }
    return hashlib.sha256(rfc8785.dumps(rules)).hexdigest()


_RULES_DIGEST: Final = _rules_digest()
_REGISTRY_VERSION: Final = f"{_RULES_REVISION}+{_RULES_DIGEST[:12]}"


def _normalise(module: str, name: str) -> str:
    """``module.name`` as the unpickler resolves it (Python 2 names mapped)."""
    module, name = _compat_pickle.NAME_MAPPING.get((module, name), (module, name))
    return f"{_compat_pickle.IMPORT_MAPPING.get(module, module)}.{name}"


def _dotted_prefixes(dotted: str) -> Iterator[str]:
    parts = dotted.split(".")
    for end in range(1, len(parts) + 1):
        yield ".".join(parts[:end])
