"""Seeds the e2e database: two users in a project, a 2880×2304 16-bit radiograph-like image with an
error map, three box suggestions and a head prediction, and a second small image.

Run as a script against the server's database (``DATABASE_URL``, ``MEDIA_ROOT`` in the environment);
prints the ids as JSON on the last line.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import sys
from pathlib import Path

import numpy as np
from PIL import Image as PILImage

PASSWORD = "e2e-pass-1234"


def radiograph(width: int, height: int, seed: int) -> np.ndarray:
    """A synthetic 16-bit 'long bone' film: soft-tissue band, a bright shaft with cortex and a lucent line."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    cx = width / 2 + 0.05 * width * np.sin(y / height * 3)
    soft = np.exp(-(((x - cx) / (0.32 * width)) ** 2)) * 14000
    dist = np.abs(x - cx) / (0.09 * width)
    bone = np.where(dist < 1, 26000 + 12000 * np.clip((dist - 0.6) / 0.4, 0, 1), 0)
    fracture = (np.abs(y - 0.55 * height - 0.3 * (x - cx)) < 0.004 * height) & (dist < 1)
    img = 3000 + soft + bone - fracture * 15000 + rng.normal(0, 400, size=(height, width))
    return np.clip(img, 0, 65535).astype(np.uint16)


def png_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    PILImage.fromarray(array).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def main() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "skelex_web.settings")
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.files.base import ContentFile

    from skelex_web.labeling.models import Suggestion
    from skelex_web.learning.models import ErrorMap, ModelVersion
    from skelex_web.projects.models import Membership, Project
    from skelex_web.projects.schema import default_schema
    from skelex_web.studies.models import Image

    User = get_user_model()
    users = {}
    for name in ("ana", "rui", "vera"):
        users[name] = User.objects.create_user(username=name, password=PASSWORD)
    project = Project.objects.create(name="Long-bone fractures", slug="long-bones", label_schema=default_schema())
    Membership.objects.create(user=users["ana"], project=project, role="annotator")
    Membership.objects.create(user=users["rui"], project=project, role="reviewer")
    Membership.objects.create(user=users["vera"], project=project, role="viewer")
    backbone = ModelVersion.objects.create(kind="backbone", name="demo")

    def add_image(name: str, array: np.ndarray, priority: float | None) -> Image:
        data = png_bytes(array)
        thumb = PILImage.fromarray((array >> 8).astype(np.uint8))
        thumb.thumbnail((256, 256))
        tbuf = io.BytesIO()
        thumb.save(tbuf, format="PNG")
        image = Image(
            project=project,
            name=name,
            file_format="png",
            sha256=hashlib.sha256(data).hexdigest(),
            pixel_sha256=hashlib.sha256(array.tobytes()).hexdigest(),
            rows=array.shape[0],
            cols=array.shape[1],
            bits=16,
            photometric_interpretation="MONOCHROME2",
            pixel_spacing_row=0.143,
            pixel_spacing_col=0.143,
            body_part="femur",
            status="analysed",
            al_priority=priority,
            al_reason="uncertain: abnormal" if priority else "",
        )
        image.file.save(f"{name}.png", ContentFile(data), save=False)
        image.display.save(f"{name}.png", ContentFile(data), save=False)
        image.thumbnail.save(f"{name}.png", ContentFile(tbuf.getvalue()), save=False)
        image.save()
        return image

    big = add_image("femur-large", radiograph(2880, 2304, 1), 0.9)
    small = add_image("femur-small", radiograph(640, 512, 2), 0.4)

    heat = np.zeros((2304, 2880, 4), dtype=np.uint8)
    heat[1100:1500, 1200:1700] = (255, 60, 0, 255)
    hbuf = io.BytesIO()
    PILImage.fromarray(heat, mode="RGBA").save(hbuf, format="PNG")
    emap = ErrorMap(image=big, model_version=backbone, params_hash="e2e", params={}, image_score=0.7)
    emap.file.save("femur-large-error.png", ContentFile(hbuf.getvalue()), save=True)

    boxes = [(1200, 1150, 1700, 1450, 0.91), (400, 300, 700, 600, 0.62), (2000, 1700, 2300, 2000, 0.35)]
    suggestions = []
    for rank, (x0, y0, x1, y1, score) in enumerate(boxes):
        suggestions.append(
            Suggestion.objects.create(
                project=project, image=big, kind="box", label="fracture", x0=x0, y0=y0, x1=x1, y1=y1,
                score=score, source="errormap", model_version=backbone, rank=rank,
            ).pk
        )  # fmt: skip
    # On the small film, clear of where the tests draw and drag: the label-key test relabels it.
    small_suggestion = Suggestion.objects.create(
        project=project, image=small, kind="box", label="fracture", x0=160, y0=440, x1=300, y1=500,
        score=0.5, source="errormap", model_version=backbone, rank=0,
    )  # fmt: skip
    head = Suggestion.objects.create(
        project=project, image=big, kind="head", head="abnormal", source="heads", model_version=backbone, rank=0,
        value={"answer": "yes", "probabilities": {"yes": 0.83, "no": 0.17}}, score=0.83,
    )  # fmt: skip
    print(
        json.dumps(
            {
                "project": project.pk,
                "big": big.pk,
                "small": small.pk,
                "small_suggestion": small_suggestion.pk,
                "suggestions": suggestions,
                "head_suggestion": head.pk,
                "users": {k: u.pk for k, u in users.items()},
            }
        )
    )


if __name__ == "__main__":
    main()
