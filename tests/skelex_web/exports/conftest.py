"""Export fixtures: images with real pixel files in the test's MEDIA_ROOT, and a labelled project."""

from __future__ import annotations

import hashlib
import io
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from django.core.files.base import ContentFile
from PIL import Image as PILImage

from tests.factories import AnnotationFactory, ImageFactory, StudyFactory


@pytest.fixture(autouse=True)
def _fast_passwords(settings: Any) -> None:
    """The personas' passwords are hashed with PBKDF2 by default: seconds per test on a busy CPU."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def png16_bytes(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    PILImage.fromarray(pixels.astype("<u2")).save(buffer, format="PNG")
    return buffer.getvalue()


def make_image(project: Any, study: Any = None, *, name: str, rows: int = 40, cols: int = 32, seed: int = 0, **kw: Any):
    """An Image row whose original and 16-bit display PNG exist on disk."""
    rng = np.random.default_rng(seed)
    pixels = (rng.random((rows, cols)) * 60000).astype(np.uint16)
    data = png16_bytes(pixels)
    image = ImageFactory(
        project=project,
        study=study,
        name=name,
        rows=rows,
        cols=cols,
        file=ContentFile(data, name=name),
        sha256=hashlib.sha256(data).hexdigest(),
        pixel_sha256=hashlib.sha256(pixels.tobytes()).hexdigest(),
        window_center=30000.0,
        window_width=40000.0,
        **kw,
    )
    image.display.save(f"{Path(name).stem}.png", ContentFile(data), save=True)
    return image


@pytest.fixture
def image_maker(project: Any) -> Callable[..., Any]:
    counter = iter(range(10_000))

    def make(study: Any = None, **kw: Any) -> Any:
        n = next(counter)
        kw.setdefault("name", f"img{n:03d}.png")
        return make_image(kw.pop("project", project), study, seed=n, **kw)

    return make


@pytest.fixture
def labelled(project: Any, personas: dict[str, Any], image_maker: Callable[..., Any]) -> dict[str, Any]:
    """Six patients with two images each: fractures on some, head answers on all, one edited suggestion."""
    from tests.factories import ModelVersionFactory, SuggestionFactory

    lead, ana = personas["lead"], personas["annotator"]
    mv = ModelVersionFactory(name="demo")
    images = []
    for p in range(6):
        study = StudyFactory(project=project, patient_pseudo_id=f"pt{p}", study_instance_uid=f"1.2.3.{p}")
        for k in range(2):
            image = image_maker(study, body_part="hand" if p % 2 else "leg")
            images.append(image)
            AnnotationFactory(image=image, kind="head", head="abnormal", value="yes" if p < 3 else "no", author=ana)
            if p < 3:
                AnnotationFactory(
                    image=image, label="fracture", x0=2.0, y0=3.5, x1=12.25, y1=20.0, author=lead, reviewed=k == 0
                )
    sug = SuggestionFactory(image=images[0], x0=2.0, y0=3.5, x1=10.0, y1=20.0, model_version=mv, state="edited")
    edited = AnnotationFactory(
        image=images[0],
        label="lesion",
        x0=2.0,
        y0=3.5,
        x1=12.0,
        y1=20.0,
        author=ana,
        origin="suggestion-edited",
        suggestion=sug,
        model_version=mv,
    )
    SuggestionFactory(image=images[1], model_version=mv, state="rejected")
    return {"images": images, "edited": edited, "suggestion": sug, "model_version": mv}


def read_zip(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as zf:
        return {name: zf.read(name) for name in zf.namelist()}
