"""Record which registered model's version each attestation subject is named as, so that the
attestation can be hidden from whoever may not see that model (registry/visible_selectors.py).

Existing subjects of a model's files are filled from the statements they were stored with: the
names of every subject entry for the row's digest (a row is one artifact; its ``name`` is the
first entry's).
"""

from __future__ import annotations

from typing import Any

from django.db import migrations, models

BATCH = 2000


def _named_model(names: list[str]) -> str:
    for name in names:
        model, _, number = name.rpartition("/")
        if model and number.isascii() and number.isdigit() and len(number.lstrip("0")) <= 9:
            return model
    return ""


def fill(apps: Any, schema_editor: Any) -> None:
    attestations = apps.get_model("provenance", "Attestation")
    subjects = apps.get_model("provenance", "AttestationSubject")
    changed = []
    rows = subjects.objects.select_related("artifact").order_by("attestation_id", "pk")
    statements: dict[int, dict[str, list[str]]] = {}
    for subject in rows.iterator(chunk_size=BATCH):
        names_by_digest = statements.get(subject.attestation_id)
        if names_by_digest is None:
            statements.clear()  # rows come by attestation: one statement held at a time
            statement = (
                attestations.objects.filter(pk=subject.attestation_id)
                .values_list("statement", flat=True)
                .first()
            ) or {}
            names_by_digest = {}
            for entry in statement.get("subject") or []:
                digest = str((entry.get("digest") or {}).get("sha256", ""))
                names_by_digest.setdefault(digest, []).append(str(entry.get("name", "")))
            statements[subject.attestation_id] = names_by_digest
        if subject.artifact.kind != "model":
            continue  # a dataset's name names no model
        names = names_by_digest.get(subject.artifact.digest, [subject.name])
        model = _named_model(names)
        if model:
            subject.named_model = model[:500]
            changed.append(subject)
        if len(changed) >= BATCH:
            subjects.objects.bulk_update(changed, ["named_model"])
            changed = []
    if changed:
        subjects.objects.bulk_update(changed, ["named_model"])


class Migration(migrations.Migration):
    dependencies = [
        ("provenance", "0008_attestation_rewrite_in_place"),
    ]

    operations = [
        migrations.AddField(
            model_name="attestationsubject",
            name="named_model",
            field=models.CharField(blank=True, default="", max_length=500),
        ),
        migrations.RunPython(fill, migrations.RunPython.noop),
        migrations.AddIndex(
            model_name="attestationsubject",
            index=models.Index(fields=["named_model"], name="attestation_subject_model"),
        ),
    ]
