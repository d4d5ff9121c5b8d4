"""Celery tasks, named ``workers.<topic>.<verb>``: thin glue between ids, services and the ML engine.

Importing this package registers every task (the Celery app autodiscovers it).
"""

from __future__ import annotations

from . import analysis, demo, ingest  # noqa: F401  (registers workers.analysis.*, .demo.*, .ingest.*)
