"""Loaded as a pytest plugin (``-p tests._env``) before Django is configured.

Test-wide environment: embedded mode, with every file under var/test so tests never touch
the database, broker or MLflow store of a ``make run`` on the same checkout."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("DEBUG", "true")
os.environ.setdefault("VAR_DIR", str(Path(__file__).resolve().parent.parent / "var" / "test"))
Path(os.environ["VAR_DIR"]).mkdir(parents=True, exist_ok=True)
