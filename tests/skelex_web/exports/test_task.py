"""The export task is found by the worker and routed to the export queue."""

from __future__ import annotations

import importlib

from skelex_web.celery import app, task_modules


def test_worker_registers_the_export_task_on_the_export_queue() -> None:
    assert "workers.tasks.export" in task_modules()
    importlib.import_module("workers.tasks.export")
    assert "workers.export.build" in app.tasks
    route = app.amqp.router.route({}, "workers.export.build")
    assert route["queue"].name == "export"
