"""Extra e2e seed: what a demo stopped in the middle of two large uploads leaves behind.

Upload 1 was being ingested ("running") and its two staged files are still on disk; upload 2 was
waiting ("queued") and its staged files are gone. Both messages lived in the in-memory queue of
the process that stopped, so nothing would ever finish either job. Run after ``seed.py`` against
the same database (``E2E_IDS`` holds its ids); prints the job ids as JSON on the last line.
"""

from __future__ import annotations

import io
import json

import numpy as np
from PIL import Image as PILImage
from seedenv import django_with_ids


def png(seed: int) -> bytes:
    buf = io.BytesIO()
    PILImage.fromarray(np.random.default_rng(seed).integers(0, 255, (64, 48), dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def main() -> None:
    ids = django_with_ids()
    from django.contrib.auth import get_user_model

    from skelex_web.projects.models import Project
    from skelex_web.studies.models import UploadJob
    from skelex_web.studies.uploads import stage_files

    project = Project.objects.get(pk=ids["project"])
    ana = get_user_model().objects.get(username="ana")
    staged = stage_files([("wrist-1.png", [png(501)]), ("wrist-2.png", [png(502)])])
    running = UploadJob.objects.create(
        project=project, uploader=ana, files=2, state="running", staging=staged[0].parent.name
    )
    gone = UploadJob.objects.create(project=project, uploader=ana, files=3, state="queued", staging="0" * 32)
    print(json.dumps({"interrupted": running.pk, "gone": gone.pk}))


if __name__ == "__main__":
    main()
