#!/usr/bin/env python
"""Django's command-line utility for skelex-web."""

import os
import sys
from pathlib import Path


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "skelex_web.settings")
    from django.conf import settings
    from django.core.management import execute_from_command_line

    # A fresh clone has no var/ and `make demo` migrates first; settings do no I/O at import.
    db = settings.DATABASES["default"]
    if db["ENGINE"].endswith("sqlite3") and str(db["NAME"]) != ":memory:":
        Path(db["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
