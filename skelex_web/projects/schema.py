"""Label schemas: box labels plus image-level heads (binary, multiclass or multilabel).

A schema is plain JSON stored on the project::

    {"box_labels": ["fracture", "lesion", "implant"],
     "heads": [{"name": "abnormal", "kind": "binary", "classes": ["no", "yes"]}, ...]}

Any head may be answered ``"unknown"``; such answers are stored but never used for training.
The default schema mirrors the SKELEX multi-head groups.
"""

from __future__ import annotations

import re
from typing import Any

UNKNOWN = "unknown"
HEAD_KINDS = ("binary", "multiclass", "multilabel")
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
# Bounds on a head's free text (its name is bounded by _NAME): unbounded, a 100 kB class name or
# description was stored in the schema, and such a class name in every answer giving it.
CLASS_MAX = 64
DESCRIPTION_MAX = 500

# The 29 anatomical sites of the SKELEX anatomical-site head.
ANATOMICAL_SITES = [
    "carpal_bones",
    "clavicle",
    "femur_diaphysis",
    "femur_distal",
    "femur_proximal",
    "fibula_diaphysis",
    "fibula_distal",
    "fibula_proximal",
    "foot",
    "hand",
    "hip_pelvis",
    "humerus_diaphysis",
    "humerus_distal",
    "humerus_proximal",
    "knee_patella",
    "radius_diaphysis",
    "radius_distal",
    "radius_proximal",
    "rib",
    "scapula",
    "shoulder",
    "spine",
    "tarsal_bones",
    "tibia_diaphysis",
    "tibia_distal",
    "tibia_proximal",
    "ulna_distal",
    "ulna_proximal",
    "ulna_diaphysis",
]


def default_schema() -> dict[str, Any]:
    """A fresh copy of the default schema (SKELEX multi-head groups)."""
    return {
        "box_labels": ["fracture", "lesion", "implant"],
        "heads": [
            {"name": "abnormal", "kind": "binary", "classes": ["no", "yes"]},
            {
                "name": "tumour_type",
                "kind": "multiclass",
                "classes": ["malignant", "intermediate", "benign", "no_tumour"],
            },
            {"name": "anatomical_site", "kind": "multiclass", "classes": list(ANATOMICAL_SITES)},
            {
                "name": "fracture_type",
                "kind": "multiclass",
                "classes": ["neoplastic_pathologic", "non_pathologic", "none"],
            },
            {"name": "implant", "kind": "binary", "classes": ["no", "yes"]},
        ],
    }


def validate_schema(schema: Any) -> dict[str, list[str]]:
    """Returns field errors keyed by JSON path (``heads[2].classes``); empty when valid."""
    errors: dict[str, list[str]] = {}

    def add(path: str, msg: str) -> None:
        errors.setdefault(path, []).append(msg)

    if not isinstance(schema, dict):
        return {"label_schema": ["must be an object with 'box_labels' and 'heads'"]}
    extra = sorted(set(schema) - {"box_labels", "heads"})
    if extra:
        add("label_schema", f"unknown keys: {', '.join(extra)}")
    box_labels = schema.get("box_labels", [])
    if not isinstance(box_labels, list) or not all(isinstance(b, str) for b in box_labels):
        add("box_labels", "must be a list of names")
    else:
        for i, name in enumerate(box_labels):
            if not _NAME.match(name):
                add(f"box_labels[{i}]", f"'{name}' is not a valid name (lowercase letters, digits, _)")
        if len(set(box_labels)) != len(box_labels):
            add("box_labels", "names must be unique")
    heads = schema.get("heads", [])
    if not isinstance(heads, list):
        add("heads", "must be a list")
        return errors
    seen: set[str] = set()
    for i, head in enumerate(heads):
        path = f"heads[{i}]"
        if not isinstance(head, dict):
            add(path, "must be an object with name, kind and classes")
            continue
        name = head.get("name")
        if not isinstance(name, str) or not _NAME.match(name):
            add(f"{path}.name", "required: lowercase letters, digits and _, starting with a letter")
        elif name in seen:
            add(f"{path}.name", f"duplicate head name '{name}'")
        else:
            seen.add(name)
        kind = head.get("kind")
        if kind not in HEAD_KINDS:
            add(f"{path}.kind", f"must be one of {', '.join(HEAD_KINDS)}")
        description = head.get("description", "")
        if not isinstance(description, str) or len(description) > DESCRIPTION_MAX:
            add(f"{path}.description", f"must be text of at most {DESCRIPTION_MAX} characters")
        classes = head.get("classes")
        if not isinstance(classes, list) or not all(isinstance(c, str) and 0 < len(c) <= CLASS_MAX for c in classes):
            add(f"{path}.classes", f"must be a list of names of 1 to {CLASS_MAX} characters")
            continue
        if len(set(classes)) != len(classes):
            add(f"{path}.classes", "class names must be unique")
        if UNKNOWN in classes:
            add(f"{path}.classes", f"'{UNKNOWN}' is reserved for unanswered heads")
        if kind == "binary" and len(classes) != 2:
            add(f"{path}.classes", "a binary head has exactly 2 classes (negative first)")
        elif kind in ("multiclass", "multilabel") and len(classes) < 2:
            add(f"{path}.classes", f"a {kind} head needs at least 2 classes")
        extra_keys = sorted(set(head) - {"name", "kind", "classes", "description"})
        if extra_keys:
            add(path, f"unknown keys: {', '.join(extra_keys)}")
    return errors


def head_names(schema: dict[str, Any]) -> list[str]:
    """The names of the schema's heads (the project's findings), in order."""
    return [h.get("name") for h in (schema or {}).get("heads", [])]


def head_by_name(schema: dict[str, Any], name: str) -> dict[str, Any] | None:
    for head in schema.get("heads", []):
        if head.get("name") == name:
            return head
    return None


def validate_head_answer(schema: dict[str, Any], head_name: str, value: Any) -> str | None:
    """An error message when ``value`` is not a valid answer to ``head_name``, else None.

    binary/multiclass: one class name or "unknown"; multilabel: a list of class names or "unknown".
    """
    head = head_by_name(schema, head_name)
    if head is None:
        return f"the project has no head named '{head_name}'"
    if value == UNKNOWN:
        return None
    classes = head["classes"]
    if head["kind"] == "multilabel":
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            return f"'{head_name}' takes a list of classes or 'unknown'"
        bad = [v for v in value if v not in classes]
        if bad:
            return f"not classes of '{head_name}': {', '.join(bad)}"
        if len(set(value)) != len(value):
            return "classes must not repeat"
        return None
    if not isinstance(value, str) or value not in classes:
        return f"'{head_name}' takes one of {', '.join(classes)} or 'unknown'"
    return None
