"""Seed the default promotion policies (compliance/policies.py DEFAULT_POLICIES)."""

from __future__ import annotations

from typing import Any

from django.db import migrations


def seed_policies(apps: Any, schema_editor: Any) -> None:
    from compliance.policies import default_policies_seed

    default_policies_seed(apps.get_model("compliance", "PromotionPolicy"))


class Migration(migrations.Migration):
    dependencies = [("compliance", "0004_promotions")]
    operations = [migrations.RunPython(seed_policies, migrations.RunPython.noop)]
