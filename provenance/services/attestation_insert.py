"""PostgreSQL: an attestation and its subjects stored in one statement (one round trip)."""

from __future__ import annotations

import functools
from typing import Any

from django.db import IntegrityError, connection

from provenance.models import Attestation, AttestationSubject


@functools.cache
def _insert_one_sql() -> str:
    """An attestation and its subjects in one statement: the columns are the model's."""
    fields = _attestation_fields()
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    attestation_table = connection.ops.quote_name(Attestation._meta.db_table)
    subject_table = connection.ops.quote_name(AttestationSubject._meta.db_table)
    return f"""
WITH attestation AS (
    INSERT INTO {attestation_table} ({columns})
    VALUES ({", ".join(["%s"] * len(fields))})
        ON CONFLICT (envelope_digest) DO NOTHING
 RETURNING id
), subjects AS (
    INSERT INTO {subject_table} (attestation_id, artifact_id, name, named_model)
    SELECT attestation.id, s.artifact_id, s.name, s.named_model
      FROM attestation, unnest(%s::bigint[], %s::varchar[], %s::varchar[])
        AS s (artifact_id, name, named_model)
 RETURNING id, artifact_id
)
SELECT attestation.id, subjects.id, subjects.artifact_id FROM attestation, subjects
"""  # noqa: S608  (identifiers come from the model, values are parameters)


def _attestation_fields() -> list[Any]:
    return [f for f in Attestation._meta.concrete_fields if not f.primary_key]


def _insert_one_postgres(attestation: Attestation, subjects: list[AttestationSubject]) -> None:
    """PostgreSQL: insert ``attestation`` and its ``subjects`` (one per artifact) in one round
    trip, the values prepared by the model's fields as ``bulk_create`` prepares them; sets
    their primary keys. A digest already held raises IntegrityError, as ``bulk_create`` does
    (without an error in the server's log: the INSERT does nothing and returns no row)."""
    values = [
        model_field.get_db_prep_save(model_field.pre_save(attestation, True), connection)
        for model_field in _attestation_fields()
    ]
    params = [
        *values,
        [subject.artifact_id for subject in subjects],
        [subject.name for subject in subjects],
        [subject.named_model for subject in subjects],
    ]
    with connection.cursor() as cursor:
        cursor.execute(_insert_one_sql(), params)
        rows = cursor.fetchall()
    if not rows and subjects:
        raise IntegrityError(f"the attestation sha256:{attestation.envelope_digest} is held")
    if len(rows) != len(subjects):
        raise RuntimeError("the attestation insert stored an unexpected number of subjects")
    attestation.pk = rows[0][0]
    subject_ids = {artifact_id: subject_id for _, subject_id, artifact_id in rows}
    for instance in (attestation, *subjects):
        instance._state.adding, instance._state.db = False, connection.alias
    for subject in subjects:
        subject.attestation = attestation
        subject.pk = subject_ids[subject.artifact_id]
