"""``workers.demo.import_phantoms``: synthetic radiographs with planted findings for the demo project.

The phantoms come from the ML core (``workers.ml.phantoms``), which the web process may not
import, so the demo command asks a worker for them by task name. They are ingested like any
upload (and so analysed like any upload); their planted boxes are not imported as labels, so
the demo shows what the model suggests, not the answer.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from celery import shared_task


@shared_task(name="workers.demo.import_phantoms", acks_late=True, reject_on_worker_lost=True)
def import_phantoms(project_id: int, count: int = 10, seed: int = 7) -> dict[str, int]:
    """Generates ``count`` phantoms and ingests them into the project; returns the ingest summary."""
    from skelex_web.projects.models import Project
    from skelex_web.studies.services import ingest_many, summarise
    from workers.ml.phantoms import write_phantoms

    project = Project.objects.get(pk=project_id)
    with tempfile.TemporaryDirectory(prefix="skelex-phantoms-") as tmp:
        records: list[dict[str, Any]] = write_phantoms(tmp, count, seed=seed, normal_share=0.2)
        items = [(Path(r["file"]).name, Path(tmp) / r["file"]) for r in records]
        return summarise(ingest_many(project, items))
