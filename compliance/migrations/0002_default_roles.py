"""Seed the eight SecMLOps security roles (ARCHITECTURE.md) as the default catalogue."""

from __future__ import annotations

from typing import Any

from django.db import migrations


def seed_roles(apps: Any, schema_editor: Any) -> None:
    from compliance.roles_catalogue import DEFAULT_ROLES

    SecurityRole = apps.get_model("compliance", "SecurityRole")
    for spec in DEFAULT_ROLES:
        SecurityRole.objects.update_or_create(
            key=spec["key"],
            defaults={**{k: v for k, v in spec.items() if k != "key"}, "is_default": True},
        )


class Migration(migrations.Migration):
    dependencies = [("compliance", "0001_initial")]
    operations = [migrations.RunPython(seed_roles, migrations.RunPython.noop)]
