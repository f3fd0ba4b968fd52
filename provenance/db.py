"""Database triggers that make the log tables append-only.

PostgreSQL: row-level triggers refuse UPDATE and DELETE, a statement-level trigger refuses
TRUNCATE. SQLite: triggers refuse UPDATE and DELETE (it has no TRUNCATE). Whoever can drop a
trigger can still rewrite rows — that is what signed checkpoints and ``verify_log`` are for.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection as default_connection
from django.db.backends.base.base import BaseDatabaseWrapper

APPEND_ONLY_TABLES = ("provenance_logentry", "provenance_merklenode", "provenance_checkpoint")

_PG_FUNCTION = """
CREATE OR REPLACE FUNCTION secmlops_refuse_change() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'append-only table %: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql
"""


def _statements(vendor: str, table: str) -> list[str]:
    if vendor == "postgresql":
        return [
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION secmlops_refuse_change()",
            f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION secmlops_refuse_change()",
        ]
    return [
        f"CREATE TRIGGER {table}_no_{op.lower()} BEFORE {op} ON {table} "
        f"BEGIN SELECT RAISE(ABORT, 'append-only table {table}: {op} refused'); END"
        for op in ("UPDATE", "DELETE")
    ]


def _drop_statements(vendor: str, table: str) -> list[str]:
    if vendor == "postgresql":
        return [
            f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}",
            f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}",
        ]
    return [f"DROP TRIGGER IF EXISTS {table}_no_{op} " for op in ("update", "delete")]


def install_triggers(connection: BaseDatabaseWrapper = default_connection) -> None:
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(_PG_FUNCTION)
        for table in APPEND_ONLY_TABLES:
            for statement in _drop_statements(connection.vendor, table):
                cursor.execute(statement)
            for statement in _statements(connection.vendor, table):
                cursor.execute(statement)


def drop_triggers(connection: BaseDatabaseWrapper = default_connection) -> None:
    with connection.cursor() as cursor:
        for table in APPEND_ONLY_TABLES:
            for statement in _drop_statements(connection.vendor, table):
                cursor.execute(statement)


@contextmanager
def triggers_suspended(
    connection: BaseDatabaseWrapper = default_connection,
) -> Iterator[None]:
    """Drop the triggers for the duration (tests of tampering; flushing a test database)."""
    drop_triggers(connection)
    try:
        yield
    finally:
        install_triggers(connection)
