"""Extra e2e seed for the active-learning loop: a lead, 30 small analysed images with embeddings from
the project's backbone (two well separated groups), and 12 of them answered for the "abnormal" head
(6 yes, 6 no), so a training round has something to learn.

Run after ``seed.py`` against the same database (``E2E_IDS`` holds its ids); prints the new ids as
JSON on the last line.
"""

from __future__ import annotations

import hashlib
import io
import json

import numpy as np
from PIL import Image as PILImage
from seedenv import django_with_ids

PASSWORD = "e2e-pass-1234"


def main() -> None:
    ids = django_with_ids()
    from django.contrib.auth import get_user_model
    from django.core.files.base import ContentFile

    from skelex_web.labeling.models import Annotation
    from skelex_web.learning.models import Embedding, ModelVersion
    from skelex_web.projects.models import Membership, Project
    from skelex_web.studies.models import Image

    project = Project.objects.get(pk=ids["project"])
    backbone = ModelVersion.objects.get(kind="backbone", name="demo")
    project.active_backbone = backbone
    project.save(update_fields=["active_backbone"])
    lead = get_user_model().objects.create_user(username="lea", password=PASSWORD)
    Membership.objects.create(user=lead, project=project, role="lead")
    ana = get_user_model().objects.get(username="ana")

    rng = np.random.default_rng(7)
    centres = rng.normal(size=(2, 16))

    def embed(image: Image, group: int) -> None:
        v = centres[group] + 0.3 * rng.normal(size=16)
        v = (v / np.linalg.norm(v)).astype("<f2")
        Embedding.objects.create(image=image, model_version=backbone, dim=16, vector=v.tobytes())

    for image in Image.objects.filter(project=project):
        embed(image, 0)
    for k in range(30):
        array = rng.integers(0, 255, (64, 64), dtype=np.uint8)
        buf = io.BytesIO()
        PILImage.fromarray(array).save(buf, format="PNG")
        data = buf.getvalue()
        image = Image(
            project=project,
            name=f"hand-{k:02d}",
            file_format="png",
            sha256=hashlib.sha256(data).hexdigest(),
            pixel_sha256=hashlib.sha256(array.tobytes()).hexdigest(),
            rows=64,
            cols=64,
            bits=8,
            photometric_interpretation="MONOCHROME2",
            body_part="HAND",
            status="analysed",
        )
        image.file.save(f"hand-{k:02d}.png", ContentFile(data), save=False)
        image.display.save(f"hand-{k:02d}.png", ContentFile(data), save=False)
        image.save()
        group = k % 2
        embed(image, group)
        if k < 12:
            Annotation.objects.create(
                project=project, image=image, kind="head", head="abnormal", value="yes" if group else "no", author=ana
            )
    print(json.dumps({"lead": lead.pk, "backbone": backbone.pk}))


if __name__ == "__main__":
    main()
