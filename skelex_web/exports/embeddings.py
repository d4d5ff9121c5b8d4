"""The backbone's embeddings of a version's images, for an export that asks for them
(``embeddings.npz`` and ``embeddings.json`` in the zip): an ML team trains its own heads on the
vectors the platform computed on its GPUs, without running the backbone again.

``embeddings.npz`` holds ``image`` (platform image ids, int64), ``stem`` (the records' file stems,
as the label files name them) and ``embeddings`` (float16, [N, D], L2-normalised, exactly as
stored), in the manifest's order. ``embeddings.json`` says which backbone and readout made them and
which of the version's images have none of that readout (not analysed yet, failed, or analysed
with other settings: ``manage.py reanalyse``). They are read when the export runs: a version's
content hash covers its labels, not the vectors.
"""

from __future__ import annotations

import io
from collections import Counter
from collections.abc import Iterable
from typing import Any

import numpy as np

from skelex_web.learning.models import Embedding
from skelex_web.learning.pipeline import analysis_params, embedding_hash
from skelex_web.learning.services import resolve_backbone

from .formats.records import Record
from .models import DatasetVersion

CHUNK = 2000  # image ids per query


def embeddings_files(version: DatasetVersion, records: Iterable[Record]) -> tuple[bytes, dict[str, Any]]:
    """(``embeddings.npz`` bytes, ``embeddings.json`` content) for the version's records."""
    order = [(int(r["image"]), str(r["stem"])) for r in records]
    backbone = resolve_backbone(version.project)
    found: dict[int, tuple[str, bytes]] = {}
    if backbone is not None:
        ids = [i for i, _ in order]
        for start in range(0, len(ids), CHUNK):
            rows = Embedding.objects.filter(image_id__in=ids[start : start + CHUNK], model_version=backbone)
            for image_id, readout, vector in rows.values_list("image_id", "readout", "vector"):
                found[image_id] = (readout, bytes(vector))
    current = embedding_hash(analysis_params())
    groups = Counter((readout, len(vector)) for readout, vector in found.values())
    # The current setting's vectors when there are any, else the most common readout: one readout
    # only, since vectors of two readouts do not belong in one matrix even at the same length.
    chosen = max(groups, key=lambda k: (k[0] == current, groups[k]), default=None)

    def readout_of(image_id: int) -> tuple[str, int] | None:
        stored = found.get(image_id)
        return (stored[0], len(stored[1])) if stored else None

    kept = [(i, stem) for i, stem in order if chosen is not None and readout_of(i) == chosen]
    dim = chosen[1] // 2 if chosen else 0
    matrix = np.zeros((len(kept), dim), dtype="<f2")
    for row, (image_id, _) in enumerate(kept):
        matrix[row] = np.frombuffer(found[image_id][1], dtype="<f2")
    buffer = io.BytesIO()
    np.savez(
        buffer,
        image=np.array([i for i, _ in kept], dtype=np.int64),
        stem=np.array([s for _, s in kept], dtype=np.str_),
        embeddings=matrix,
    )
    kept_ids = {i for i, _ in kept}
    missing = [stem for i, stem in order if i not in kept_ids]
    about = {
        "backbone": {"id": backbone.pk, "name": backbone.name, "sha256": (backbone.config or {}).get("sha256", "")}
        if backbone
        else None,
        "readout": chosen[0] if chosen else None,
        "readout_is_current": bool(chosen and chosen[0] == current),
        "dim": dim,
        "dtype": "float16, L2-normalised",
        "count": len(kept),
        "missing": len(missing),
        "missing_stems": missing,
    }
    return buffer.getvalue(), about
