"""``make bench``: run every benchmark (or those named) and print their figures.

Each benchmark measures the registry against a baseline in the same run and prints the ratio,
so figures from different machines compare. Nothing here asserts a time.

    python -m bench            # all
    python -m bench sync       # bench/bench_sync.py only
"""

from __future__ import annotations

import importlib
import os
import sys
import tempfile
from pathlib import Path

BENCH_DATABASE = "postgres://postgres@127.0.0.1:5432/secmlops_bench"


def _fresh_postgres(url: str) -> bool:
    """Recreate the benchmark database; False when no PostgreSQL answers."""
    try:
        import psycopg
    except ImportError:
        return False
    name = url.rsplit("/", 1)[1]
    admin = url.rsplit("/", 1)[0] + "/postgres"
    try:
        with psycopg.connect(admin, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.Error:
        return False
    return True


def main(argv: list[str]) -> int:
    os.environ.setdefault("DEBUG", "true")
    url = os.environ.get("BENCH_DATABASE_URL", BENCH_DATABASE)
    if "DATABASE_URL" not in os.environ and _fresh_postgres(url):
        os.environ["DATABASE_URL"] = url
    elif "DATABASE_URL" not in os.environ:
        print("PostgreSQL is not reachable: benchmarking on SQLite")
    os.environ.setdefault("VAR_DIR", tempfile.mkdtemp(prefix="secmlops-bench-"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    names = argv or sorted(
        p.stem.removeprefix("bench_") for p in Path(__file__).parent.glob("bench_*.py")
    )
    for name in names:
        module = importlib.import_module(f"bench.bench_{name}")
        print(f"\n## {name}: {module.__doc__.strip().splitlines()[0] if module.__doc__ else ''}")
        module.run()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
