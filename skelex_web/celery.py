"""The Celery app. Tasks live in ``workers/tasks`` and are named ``workers.<topic>.<verb>``.

The web process enqueues by task name (``send_task``) so it never imports torch.
"""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "skelex_web.settings")

app = Celery("skelex_web")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["workers.tasks"], related_name=None, force=False)
