"""Create the PostgreSQL database of ``DATABASE_URL`` if it does not exist (``make serve-prod``).

Connects to the server's ``postgres`` maintenance database with the same credentials. Exits 0
when the database exists or was created, 1 with a message when the server cannot be reached.
"""

from __future__ import annotations

import os
import sys

import dj_database_url
import psycopg
from psycopg import sql


def main() -> int:
    """Create the database named in ``DATABASE_URL`` unless it exists; return an exit code."""
    config = dj_database_url.parse(os.environ["DATABASE_URL"])
    if config["ENGINE"] != "django.db.backends.postgresql":
        print(f"DATABASE_URL is not PostgreSQL ({config['ENGINE']}): nothing to create")
        return 0
    params = {
        "dbname": "postgres",
        "user": config.get("USER") or None,
        "password": config.get("PASSWORD") or None,
        "host": config.get("HOST") or None,
        "port": config.get("PORT") or None,
    }
    try:
        with psycopg.connect(**{k: v for k, v in params.items() if v}, autocommit=True) as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", [config["NAME"]]
            ).fetchone()
            if not exists:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(config["NAME"])))
                print(f"created database {config['NAME']}")
    except psycopg.OperationalError as exc:
        print(f"PostgreSQL is not reachable: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
