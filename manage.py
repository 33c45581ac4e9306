#!/usr/bin/env python
"""Django's command-line utility for ShelfWatch.

A database that cannot be reached ends any command with one line on stderr and exit status 2
(``error: database unavailable: ...``), not a page of chained tracebacks; ``--traceback``
shows the traceback as usual.
"""

from __future__ import annotations

import os
import sys

EXIT_DATABASE_UNAVAILABLE = 2


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    from django.core.management import execute_from_command_line
    from django.db.utils import InterfaceError, OperationalError

    try:
        execute_from_command_line(sys.argv)
    except (OperationalError, InterfaceError) as exc:
        if "--traceback" in sys.argv:
            raise
        first_line = next((line for line in str(exc).splitlines() if line.strip()), repr(exc))
        # SQLite reports a database never migrated as an OperationalError too.
        what = (
            "database not migrated (run manage.py migrate)"
            if first_line.startswith("no such table")
            else "database unavailable"
        )
        print(f"error: {what}: {first_line.strip()}", file=sys.stderr)
        sys.exit(EXIT_DATABASE_UNAVAILABLE)


if __name__ == "__main__":
    main()
