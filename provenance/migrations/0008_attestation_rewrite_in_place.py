"""Make re-verification's rewrite of every attestation row cheap (PostgreSQL only).

A re-verification records its outcome on each row it checks (status, problem, time), so
PostgreSQL writes a new version of every row. Two changes keep that from touching the indexes:

* Drop the two ``varchar_pattern_ops`` indexes Django adds for LIKE queries on
  ``envelope_digest`` and ``predicate_type``: nothing queries either column with LIKE (both are
  looked up whole, through the unique and plain indexes that stay), yet every ingest and every
  rewrite inserted into them.
* Fill pages only half (``fillfactor = 50``), so the new version of a row fits on its own page
  and the update is a heap-only tuple (HOT) update: no index entry at all. A table whose rows
  are all rewritten in a pass holds that much free space anyway once vacuumed — 10,000
  attestations took the same 39 MB of heap either way — but spread over other pages, where
  HOT cannot use it; and the indexes stop growing by one entry per row per pass.

bench/bench_attestations.py measures the pass. Existing pages keep their fill until the table is
rewritten (VACUUM FULL, pg_repack); new rows and every pass after a vacuum benefit at once.
"""

from __future__ import annotations

from typing import Any

from django.db import migrations

TABLE = "provenance_attestation"
LIKE_INDEXES = {
    "provenance_attestation_envelope_digest_5728b62c_like": "envelope_digest",
    "provenance_attestation_predicate_type_0f94f5c5_like": "predicate_type",
}
FILLFACTOR = 50


def forwards(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return  # SQLite has neither the indexes nor fill factors
    for name in LIKE_INDEXES:
        schema_editor.execute(f'DROP INDEX IF EXISTS "{name}"')
    schema_editor.execute(f'ALTER TABLE "{TABLE}" SET (fillfactor = {FILLFACTOR})')


def backwards(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(f'ALTER TABLE "{TABLE}" RESET (fillfactor)')
    for name, column in LIKE_INDEXES.items():
        schema_editor.execute(
            f'CREATE INDEX IF NOT EXISTS "{name}" ON "{TABLE}" ("{column}" varchar_pattern_ops)'
        )


class Migration(migrations.Migration):
    dependencies = [("provenance", "0007_model_scans")]
    operations = [migrations.RunPython(forwards, backwards)]
