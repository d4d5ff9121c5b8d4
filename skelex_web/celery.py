"""The Celery app. Tasks live in ``workers/tasks`` and are named ``workers.<topic>.<verb>``.

The web process enqueues by task name (``send_task``) so it never imports torch. Workers import
every module of the ``workers.tasks`` package when they start (a new task module needs no
registration here); the web process never does.
"""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "skelex_web.settings")

TASK_PACKAGE = "workers.tasks"


def task_modules() -> list[str]:
    """Every module of ``workers.tasks`` (found by file name, imported by the worker)."""
    import importlib.util
    import pkgutil

    spec = importlib.util.find_spec(TASK_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return []
    names = pkgutil.iter_modules(list(spec.submodule_search_locations))
    return [f"{TASK_PACKAGE}.{m.name}" for m in names if not m.name.startswith("_")]


app = Celery("skelex_web")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(task_modules, related_name=None, force=False)
