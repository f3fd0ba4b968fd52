"""Make the log tables append-only (triggers) and create the single LogState row."""

from __future__ import annotations

from typing import Any

from django.db import migrations


def install(apps: Any, schema_editor: Any) -> None:
    from provenance.db import install_triggers

    install_triggers(schema_editor.connection)
    apps.get_model("provenance", "LogState").objects.get_or_create(pk=1)


def uninstall(apps: Any, schema_editor: Any) -> None:
    from provenance.db import drop_triggers

    drop_triggers(schema_editor.connection)


class Migration(migrations.Migration):
    dependencies = [("provenance", "0001_initial")]
    operations = [migrations.RunPython(install, uninstall)]
