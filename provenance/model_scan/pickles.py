"""This registry's own pickle scanner: an abstract walk over the opcodes, never an unpickling.

It names every import a pickle makes (``STACK_GLOBAL`` arguments resolved through the
memo) and judges each against the import rules.
"""

from __future__ import annotations

import os
import pickle
import pickletools
import struct
from dataclasses import dataclass, field
from typing import IO, Final

from provenance.model_scan.blobs import _Blob
from provenance.model_scan.enums import REGISTRY_SCANNER, Severity
from provenance.model_scan.results import Finding, ScanPolicy
from provenance.model_scan.rules import _DENIED, _dotted_prefixes, _normalise, _words

# How the walk treats each opcode: a kind for the few that matter, else its stack effect.
_STRING, _PUT, _MEMOIZE, _GET, _MARK, _DUP, _POP, _GLOBAL, _INST, _STACK_GLOBAL, _EXT = range(11)
_SPECIAL_OPS: Final = {
    **dict.fromkeys(
        _words("STRING BINSTRING SHORT_BINSTRING UNICODE SHORT_BINUNICODE BINUNICODE BINUNICODE8"),
        _STRING,
    ),
    **dict.fromkeys(_words("PUT BINPUT LONG_BINPUT"), _PUT),
    **dict.fromkeys(_words("GET BINGET LONG_BINGET"), _GET),
    **dict.fromkeys(_words("EXT1 EXT2 EXT4"), _EXT),
    "MEMOIZE": _MEMOIZE,
    "MARK": _MARK,
    "DUP": _DUP,
    "POP": _POP,
    "GLOBAL": _GLOBAL,
    "INST": _INST,
    "STACK_GLOBAL": _STACK_GLOBAL,
}


def _stack_effects() -> dict[str, tuple[bool, int, int]]:
    """Per other opcode: (pops to the last MARK, further items popped, items pushed)."""
    effects = {}
    for opcode in pickletools.opcodes:
        before = opcode.stack_before
        to_mark = pickletools.markobject in before
        pops = before.index(pickletools.markobject) if to_mark else len(before)
        effects[opcode.name] = (to_mark, pops, len(opcode.stack_after))
    return effects


_STACK_EFFECTS: Final = _stack_effects()
_TORCH_LEGACY_MAGIC: Final = 0x1950A86A20F9469CFC6C
_TORCH_LEGACY_PICKLES: Final = 5  # magic, protocol, sys info, object, storage keys
_PROTO_OPCODE: Final = pickle.PROTO[0]


class _Malformed(ValueError):
    """Internal: the bytes cannot be unpickled (stack underflow, unknown memo key...)."""


@dataclass(slots=True)
class _PickleAnalysis:
    imports: dict[tuple[str, str], int] = field(default_factory=dict)
    unresolved: list[int] = field(default_factory=list)
    extensions: list[int] = field(default_factory=list)
    pickles: int = 0
    error: str | None = None


def _walk_pickle(stream: IO[bytes], analysis: _PickleAnalysis) -> None:  # noqa: PLR0912, PLR0915
    """Records the imports of one pickle by interpreting its stack abstractly.

    Mirrors ``pickle._Unpickler`` only as far as naming imports needs: MARK saves
    the stack on a metastack, the memo remembers stack values, ``STACK_GLOBAL``
    takes its module and name from the top two values (usually memo lookups);
    every other value is an opaque ``None``. A stack underflow or an unset memo
    key raises, as unpickling would. One branch per opcode family, in one loop:
    this runs once per opcode of every pickle.
    """
    stack: list[object] = []
    metastack: list[list[object]] = []
    memo: dict[object, object] = {}
    imports = analysis.imports
    special = _SPECIAL_OPS
    for opcode, arg, pos in pickletools.genops(stream):
        kind = special.get(opcode.name)
        if kind is None:
            to_mark, pops, pushes = _STACK_EFFECTS[opcode.name]
            if to_mark:
                stack = metastack.pop()
            if pops > len(stack):
                raise _Malformed(f"stack underflow at byte {pos}")
            if pops:
                del stack[-pops:]
            if pushes:
                stack.extend([None] * pushes)
        elif kind == _STRING:
            stack.append(arg)
        elif kind == _MEMOIZE:
            memo[len(memo)] = stack[-1]
        elif kind == _PUT:
            memo[arg] = stack[-1]
        elif kind == _GET:
            stack.append(memo[arg])
        elif kind == _MARK:
            metastack.append(stack)
            stack = []
        elif kind == _DUP:
            stack.append(stack[-1])
        elif kind == _POP:  # on an empty stack, POP discards a MARK (as the unpickler does)
            if stack:
                stack.pop()
            else:
                stack = metastack.pop()
        elif kind in (_GLOBAL, _INST):
            module, _, name = str(arg).partition(" ")
            imports.setdefault((module, name), pos or 0)
            if kind == _INST:
                stack = metastack.pop()
            stack.append(None)
        elif kind == _STACK_GLOBAL:
            name_value, module_value = stack.pop(), stack.pop()
            if isinstance(module_value, str) and isinstance(name_value, str):
                imports.setdefault((module_value, name_value), pos or 0)
            else:
                analysis.unresolved.append(pos or 0)
            stack.append(None)
        else:  # _EXT: an import through copyreg's extension registry
            analysis.extensions.append(pos or 0)
            stack.append(None)


def _has_more(stream: IO[bytes]) -> bool:
    if not stream.read(1):
        return False
    stream.seek(-1, os.SEEK_CUR)
    return True


def _analyse_pickle(stream: IO[bytes], *, max_pickles: int | None = None) -> _PickleAnalysis:
    """Imports of the pickle(s) in ``stream`` from its position, without unpickling.

    Like picklescan it reads pickles back to back (``torch.save`` legacy files
    hold five); bytes after the last complete pickle that do not parse set
    ``error``: a loader could still reach them, this scan could not.
    """
    analysis = _PickleAnalysis()
    while (max_pickles is None or analysis.pickles < max_pickles) and _has_more(stream):
        try:
            _walk_pickle(stream, analysis)
        except (ValueError, EOFError, struct.error, OverflowError, IndexError, KeyError) as exc:
            where = "after the last complete pickle" if analysis.pickles else "in the pickle"
            analysis.error = f"unparseable data {where}: {type(exc).__name__}: {exc}"
            return analysis
        analysis.pickles += 1
    return analysis


def _is_torch_legacy(blob: _Blob) -> bool:
    """``torch.save`` before zip files: a first pickle holding only the magic number."""
    head = blob.read_at(0, 64)
    try:
        ops = [(op.name, arg) for op, arg, _ in pickletools.genops(head)]
    except ValueError:
        return False
    values = [arg for name, arg in ops if name not in ("PROTO", "STOP")]
    return values == [_TORCH_LEGACY_MAGIC]


def _starts_with_proto(head: bytes) -> bool:
    return len(head) >= 2 and head[0] == _PROTO_OPCODE and head[1] <= pickle.HIGHEST_PROTOCOL


def _judge_import(module: str, name: str, policy: ScanPolicy) -> Finding | None:
    """Finding for one pickle import: denylisted, allowlisted (None) or unlisted."""
    written = f"{module}.{name}"
    dotted = _normalise(module, name)
    for prefix in _dotted_prefixes(dotted):
        if prefix in _DENIED:
            severity, reason = _DENIED[prefix]
            return Finding(
                REGISTRY_SCANNER,
                severity,
                written,
                "dangerous-import",
                f"the pickle imports {dotted}, which {reason}",
            )
    if policy.allows_import(dotted):
        return None
    return Finding(
        REGISTRY_SCANNER,
        Severity.MEDIUM,
        written,
        "unlisted-import",
        f"the pickle imports {dotted}, which is on neither the allowlist nor the denylist",
    )


def _registry_pickle_findings(analysis: _PickleAnalysis, policy: ScanPolicy) -> list[Finding]:
    findings = [
        finding
        for module, name in analysis.imports
        if (finding := _judge_import(module, name, policy)) is not None
    ]
    if analysis.unresolved:
        findings.append(
            Finding(
                REGISTRY_SCANNER,
                Severity.CRITICAL,
                "<computed>",
                "unresolved-import",
                f"{len(analysis.unresolved)} STACK_GLOBAL import(s) take their module or name "
                f"from values built at load time (first at byte {analysis.unresolved[0]})",
            )
        )
    if analysis.extensions:
        findings.append(
            Finding(
                REGISTRY_SCANNER,
                Severity.HIGH,
                "<extension-registry>",
                "unresolved-import",
                "the pickle imports through the copyreg extension registry, "
                "which this scan cannot resolve",
            )
        )
    return findings
