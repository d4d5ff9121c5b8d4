"""The start of every extra e2e seed script (run as ``python tests/e2e/seed_x.py``, so this folder is
on ``sys.path``): Django set up against the server's database from the environment, and the ids
that ``seed.py`` and earlier seeds printed (``E2E_IDS``)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any


def django_with_ids() -> dict[str, Any]:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "skelex_web.settings")
    import django

    django.setup()
    return dict(json.loads(os.environ["E2E_IDS"]))
