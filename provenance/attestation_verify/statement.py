"""Checks of an in-toto Statement v1: subjects, the predicate type and the predicate's shape."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from provenance.attestation_verify.constants import (
    _EXACT_PREDICATE_TYPES,
    _HEX_DIGEST_ALGORITHMS,
    _LOWER_HEX,
    _SHA256_HEX,
    _VERSIONED_PREDICATE_TYPES,
    MAX_JSON_DEPTH,
    MAX_RUN_ID_CHARS,
    MAX_SUBJECT_NAME_CHARS,
    PREDICATE_MODEL_SIGNING,
    PREDICATE_SLSA_PROVENANCE_V1,
    PREDICATE_TEST_RESULT,
    STATEMENT_TYPE_V1,
)
from provenance.attestation_verify.errors import AttestationRejected, RejectionCode, _quoted


def _check_statement(statement: Any) -> None:
    """in-toto Statement v1 (spec/v1/statement.md), plus the registry's own requirements:
    every subject carries a sha256 digest and the predicate type is one we understand.

    Unknown extra fields are allowed, as the spec's parsing rules require.
    """
    if not isinstance(statement, Mapping):
        raise _not_a_statement("payload is not a JSON object")
    _check_storable(statement)
    if statement.get("_type") != STATEMENT_TYPE_V1:
        raise _not_a_statement(
            f"_type is {_quoted(statement.get('_type'))}, expected {STATEMENT_TYPE_V1!r}"
        )
    subjects = statement.get("subject")
    if not isinstance(subjects, list) or not subjects:
        raise _not_a_statement("subject must be a non-empty list")
    for index, subject in enumerate(subjects):
        _check_subject(subject, index)
    predicate_type = statement.get("predicateType")
    if not isinstance(predicate_type, str) or not predicate_type:
        raise _not_a_statement("predicateType must be a non-empty string")
    # The spec makes predicate optional ("unset is treated the same as set-but-empty").
    if not isinstance(statement.get("predicate", {}), Mapping):
        raise _not_a_statement("predicate must be a JSON object")
    check_predicate_type(predicate_type)
    check_predicate_shape(predicate_type, statement.get("predicate") or {})


# Where the registry reads a predicate it accepts from pipelines (lineage, gates), the JSON type
# each field must have when present: (path, type). A list path element "*" is each item.
_READ_FIELDS: dict[str, tuple[tuple[tuple[str, ...], type], ...]] = {
    PREDICATE_SLSA_PROVENANCE_V1: (
        (("buildDefinition",), dict),
        (("buildDefinition", "resolvedDependencies"), list),
        (("buildDefinition", "resolvedDependencies", "*"), dict),
        (("buildDefinition", "resolvedDependencies", "*", "digest"), dict),
        (("buildDefinition", "resolvedDependencies", "*", "annotations"), dict),
        (("runDetails",), dict),
        (("runDetails", "builder"), dict),
        (("runDetails", "metadata"), dict),
    ),
    PREDICATE_TEST_RESULT: (
        (("result",), str),
        (("configuration",), list),
        (("metrics",), dict),
    ),
    PREDICATE_MODEL_SIGNING: (
        (("resources",), list),
        (("resources", "*"), dict),
        (("resources", "*", "name"), str),
        (("resources", "*", "digest"), str),
    ),
}


def check_predicate_shape(predicate_type: str, predicate: Mapping[str, Any]) -> None:
    """The fields the registry reads from an accepted predicate have the JSON type their
    specification gives (an object, a list, a string) wherever they are present; the rest of
    the predicate is the signer's business. Raises AttestationRejected (malformed_predicate)."""
    for path, expected in _READ_FIELDS.get(predicate_type, ()):
        for where, value in _at(predicate, path):
            if value is None and path[-1] != "*":
                continue  # a field set to null reads as unset
            if not isinstance(value, expected):
                raise _malformed_predicate(
                    f"field {where} must be {_JSON_TYPE_NAMES[expected]}, not {_json_type(value)}"
                )
    if predicate_type == PREDICATE_SLSA_PROVENANCE_V1:
        for where, run_id in _at(predicate, ("runDetails", "metadata", "invocationId")):
            if len(str(run_id)) > MAX_RUN_ID_CHARS:
                raise _malformed_predicate(
                    f"{where} is longer than {MAX_RUN_ID_CHARS} characters (it names a run)"
                )
        dependencies = ("buildDefinition", "resolvedDependencies", "*", "digest")
        for where, digest in _at(predicate, dependencies):
            for algorithm, value in (digest or {}).items():
                if not isinstance(value, str):
                    raise _malformed_predicate(f"{where}.{algorithm} must be a string")
                if algorithm in _HEX_DIGEST_ALGORITHMS and not _LOWER_HEX.fullmatch(value):
                    raise _malformed_predicate(f"{where}.{algorithm} must be lowercase hex")
            sha256 = (digest or {}).get("sha256")
            if sha256 is not None and not _SHA256_HEX.fullmatch(sha256):
                raise _malformed_predicate(f"{where}.sha256 must be 64 lowercase hex digits")


def _malformed_predicate(detail: str) -> AttestationRejected:
    return AttestationRejected(RejectionCode.MALFORMED_PREDICATE, f"malformed predicate: {detail}")


_JSON_TYPE_NAMES: dict[type, str] = {dict: "an object", list: "a list", str: "a string"}


def _at(value: Any, path: tuple[str, ...], where: str = "") -> Iterator[tuple[str, Any]]:
    """(location, value) of each value found at ``path`` ("*": every item of a list); paths
    through something of the wrong type find nothing (its own check reports it)."""
    if not path:
        yield where, value
        return
    head, rest = path[0], path[1:]
    if head == "*":
        if isinstance(value, list):
            for index, item in enumerate(value):
                yield from _at(item, rest, f"{where}[{index}]")
    elif isinstance(value, Mapping) and head in value:
        yield from _at(value[head], rest, f"{where}.{head}" if where else head)


def _check_storable(value: Any, depth: int = 1) -> None:
    """What the database can hold of a statement: no NUL character (U+0000) in any key or
    string, which neither PostgreSQL's text nor its jsonb accepts, and no nesting deeper than
    MAX_JSON_DEPTH, which every later reader (the database, a JSON encoder, an auditor's
    tools) would have to recurse through. The recursion stops at that depth."""
    if depth > MAX_JSON_DEPTH:
        raise AttestationRejected(
            RejectionCode.MALFORMED_JSON,
            f"payload nests objects and lists deeper than {MAX_JSON_DEPTH} levels",
        )
    items = value.items() if isinstance(value, dict) else enumerate(value)
    for key, item in items:
        for text in (key, item):
            if type(text) is str and "\x00" in text:
                raise AttestationRejected(
                    RejectionCode.MALFORMED_JSON,
                    "payload contains a NUL character (\\u0000), which the registry cannot store",
                )
        if isinstance(item, dict | list):
            _check_storable(item, depth + 1)


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return _JSON_TYPE_NAMES.get(type(value), "null")


def _check_subject(subject: Any, index: int) -> None:
    """``name`` is optional in v1 (unset when not meaningful); ``digest`` is required."""
    if not isinstance(subject, Mapping):
        raise _not_a_statement(f"subject {index} is not a JSON object")
    name = subject.get("name", "")
    if not isinstance(name, str):
        raise _not_a_statement(f"subject {index} name must be a string")
    if len(name) > MAX_SUBJECT_NAME_CHARS:
        raise _not_a_statement(
            f"subject {index} name is longer than {MAX_SUBJECT_NAME_CHARS} characters"
        )
    number = name.rpartition("/")[2]
    if number.isdigit() and not number.isascii():
        # "fraud/" and a fullwidth one would read as a version of fraud to a person, and is
        # not one to the registry: a version is named in ASCII digits.
        raise _not_a_statement(
            f"subject {index} name ends in digits other than 0-9: a version is <model>/<n>"
        )
    digest = subject.get("digest")
    if not isinstance(digest, Mapping) or not digest:
        raise _not_a_statement(f"subject {index} digest must be a non-empty object")
    for algorithm, value in digest.items():
        _check_digest_value(algorithm, value, index)
    if not _SHA256_HEX.fullmatch(str(digest.get("sha256", ""))):
        raise _not_a_statement(f"subject {index} needs a sha256 digest of 64 lowercase hex digits")


def _check_digest_value(algorithm: str, value: Any, index: int) -> None:
    if not isinstance(value, str) or not value:
        raise _not_a_statement(f"subject {index} digest {_quoted(algorithm)} must be a string")
    if algorithm in _HEX_DIGEST_ALGORITHMS and not _LOWER_HEX.fullmatch(value):
        raise _not_a_statement(f"subject {index} digest {algorithm} must be lowercase hex")


def _not_a_statement(detail: str) -> AttestationRejected:
    return AttestationRejected(
        RejectionCode.NOT_A_STATEMENT, f"not an in-toto Statement v1: {detail}"
    )


def check_predicate_type(predicate_type: str) -> None:
    """Accept only predicate types whose meaning the registry knows.

    Unknown types are refused rather than stored: lineage and policy are derived from
    predicates, and a statement nobody can interpret is evidence of nothing.
    """
    if predicate_type in _EXACT_PREDICATE_TYPES:
        return
    if any(pattern.fullmatch(predicate_type) for pattern in _VERSIONED_PREDICATE_TYPES):
        return
    raise AttestationRejected(
        RejectionCode.UNKNOWN_PREDICATE_TYPE,
        f"predicate type {_quoted(predicate_type)} is not accepted",
    )
