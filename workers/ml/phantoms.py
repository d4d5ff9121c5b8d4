"""Seeded synthetic radiographs of a limb with planted findings whose boxes are known exactly.

Real labelled abnormalities are scarce and cannot ship in tests; these phantoms can. Each image is
a projection of simple physics: a soft-tissue cylinder with one or two long bones inside it, each
bone a cortical tube (bright edges, as a real radiograph's cortex) around a textured medulla,
flaring toward the ends; a collimation border, a radiopaque side marker, blur and quantum noise.
Findings change the attenuation locally:

- ``lytic``: a round or oval region of lost bone (darker), with a thin sclerotic rim;
- ``sclerotic``: a dense focus (brighter);
- ``fracture``: a thin lucent line across the bone, with a small step in the cortex.

``make_phantom(seed) -> (uint16 image, boxes)`` is a pure function of its arguments (same seed,
same pixels). Boxes are ``{"label": str, "box": [x0, y0, x1, y1]}`` in pixels of the image
(x = column, end-exclusive), tight around the altered pixels. ``write_phantoms`` writes 16-bit
PNGs in the FracAtlas layout (``images/...``, ``Annotations/YOLO/*.txt``, empty file = normal)
plus ``boxes.json``, so the localization harness and the demo read them like real data.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from scipy.ndimage import gaussian_filter, zoom

FINDINGS = ("lytic", "sclerotic", "fracture")
Box = dict[str, Any]


def _tube_paths(v: np.ndarray, outer: np.ndarray, inner: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """X-ray path lengths through a tube at signed distance ``v`` from its axis: (cortex, medulla)."""
    full = 2.0 * np.sqrt(np.clip(outer**2 - v**2, 0.0, None))
    med = 2.0 * np.sqrt(np.clip(inner**2 - v**2, 0.0, None))
    return full - med, med


def _axis_coords(h: int, w: int, cx: float, angle: float) -> tuple[np.ndarray, np.ndarray]:
    """(u, v): position along a near-vertical axis through (cx, h/2) tilted by ``angle``, and across it."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    dy, dx = math.cos(angle), math.sin(angle)
    rx, ry = xx - cx, yy - h / 2
    return rx * dx + ry * dy, rx * dy - ry * dx


def make_phantom(
    seed: int, size: tuple[int, int] = (512, 384), findings: Sequence[str] = ("lytic",)
) -> tuple[np.ndarray, list[Box]]:
    """One phantom radiograph.

    Args:
        seed: all randomness comes from it.
        size: (height, width) in pixels.
        findings: labels from ``FINDINGS`` to plant (repeats allowed); empty for a normal image.

    Returns:
        image: [H, W] uint16, bone bright (MONOCHROME2 convention); boxes: one per planted finding.
    """
    unknown = set(findings) - set(FINDINGS)
    if unknown:
        raise ValueError(f"unknown findings {sorted(unknown)}; known: {FINDINGS}")
    # Separate streams: anatomy, findings, noise. The same seed with and without findings gives
    # the same limb and the same noise, so the findings are the only difference (tests use it).
    rng = np.random.default_rng([seed, 0])
    frng = np.random.default_rng([seed, 1])
    nrng = np.random.default_rng([seed, 2])
    h, w = size
    angle = rng.uniform(-0.25, 0.25)
    limb_cx = w / 2 + rng.uniform(-0.08, 0.08) * w
    u, v = _axis_coords(h, w, limb_cx, angle)

    # Soft tissue: a cylinder of slowly varying radius with smooth, slightly textured density.
    tissue_r = w * rng.uniform(0.28, 0.38) * (1 + 0.08 * np.sin(u / h * math.pi * rng.uniform(0.5, 1.5)))
    tissue = 2.0 * np.sqrt(np.clip(tissue_r**2 - v**2, 0.0, None)) / w
    lumps = zoom(rng.standard_normal((h // 24 + 2, w // 24 + 2)), (h / (h // 24 + 2), w / (w // 24 + 2)), order=3)
    atten = 0.6 * tissue * (1 + 0.08 * lumps[:h, :w])

    # Bones: one or two parallel long bones (forearm, leg pairs), each a cortical tube.
    n_bones = int(rng.integers(1, 3))
    offsets = [0.0] if n_bones == 1 else [-1.0, 1.0]
    bones: list[dict[str, Any]] = []
    texture = gaussian_filter(rng.standard_normal((h, w)), 2.0)
    texture = 1 + 0.35 * texture / (texture.std() + 1e-6)
    for k, off in enumerate(offsets):
        r0 = w * rng.uniform(0.065, 0.095) * (0.75 if k == 1 else 1.0)
        centre = off * (r0 * 1.6 + w * 0.03) + rng.uniform(-4, 4)
        end = h * rng.uniform(0.25, 0.4)  # flares toward the epiphysis at the top or the bottom
        sign = 1 if rng.random() < 0.5 else -1
        flare = 1 + 0.55 * np.exp(-(((u - sign * end) / (h * 0.12)) ** 2))
        outer = r0 * flare
        cortex_t = r0 * rng.uniform(0.22, 0.32) / flare  # the cortex thins where the bone flares
        inner = np.clip(outer - cortex_t, 0.0, None)
        bones.append({"centre": centre, "outer": outer, "inner": inner, "r0": r0, "v": v - centre})
    bone_cortex = np.zeros((h, w), np.float32)
    bone_medulla = np.zeros((h, w), np.float32)
    for b in bones:
        c, m = _tube_paths(b["v"], b["outer"], b["inner"])
        bone_cortex += c / w
        bone_medulla += m / w
    cortex_mu, medulla_mu = 7.0, 1.0 * texture

    # Collimation (the unexposed border) and the marker position, drawn now so boxes can avoid them.
    top, bottom = int(rng.integers(0, h // 16 + 1)), h - int(rng.integers(0, h // 16 + 1))
    left, right = int(rng.integers(0, w // 12 + 1)), w - int(rng.integers(0, w // 12 + 1))
    my, mx = int(h * rng.uniform(0.08, 0.15)), int(w * (0.08 if rng.random() < 0.5 else 0.8))
    exposed = np.zeros((h, w), bool)
    exposed[top:bottom, left:right] = True

    boxes: list[Box] = []
    change = np.zeros((h, w), np.float32)  # added attenuation from findings
    for label in findings:
        b = bones[int(frng.integers(0, len(bones)))]
        uu = frng.uniform(-0.3, 0.3) * h
        # Finding centre in image coordinates (on the bone axis, offset a little across it).
        across = frng.uniform(-0.35, 0.35) * b["r0"]
        dy, dx = math.cos(angle), math.sin(angle)
        cx = limb_cx + uu * dx + (b["centre"] + across) * dy
        cy = h / 2 + uu * dy - (b["centre"] + across) * dx
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        in_bone = (np.abs(b["v"]) < b["outer"]).astype(np.float32)
        if label in ("lytic", "sclerotic"):
            ra = b["r0"] * frng.uniform(0.45, 0.8)
            rb = ra * frng.uniform(0.7, 1.4)
            d = np.sqrt(((xx - cx) / ra) ** 2 + ((yy - cy) / rb) ** 2)
            core = np.clip(1.0 - d, 0.0, None) ** 0.5 * in_bone
            if label == "lytic":
                rim = np.exp(-(((d - 1.05) / 0.1) ** 2)) * in_bone
                delta = -0.9 * core * (cortex_mu * bone_cortex + medulla_mu * bone_medulla) + rim * b["r0"] / w
                region = (core > 0.0) | (rim > 0.05)
            else:
                delta = core * 2.0 * b["r0"] / w * cortex_mu
                region = core > 0.0
        else:
            theta = angle + frng.uniform(-0.6, 0.6)  # the line runs across the bone, often obliquely
            nx, ny = -math.sin(theta), math.cos(theta)  # line normal
            dist = (xx - cx) * nx + (yy - cy) * ny
            gap = frng.uniform(1.2, 2.2)
            line = np.exp(-((dist / gap) ** 2)) * in_bone * (np.abs(u - uu) < b["r0"] * 3)
            delta = -0.85 * line * (cortex_mu * bone_cortex + medulla_mu * bone_medulla)
            region = line > 0.03  # the blurred tails of the line count as part of it
        change += delta.astype(np.float32)
        ys, xs = np.nonzero(region & exposed)
        if len(xs) == 0:  # the finding fell outside every bone; cannot happen by construction
            raise AssertionError("finding without pixels")
        boxes.append({"label": str(label), "box": [int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1]})

    atten = atten + cortex_mu * bone_cortex + medulla_mu * bone_medulla + change
    img = 1.0 - np.exp(-np.clip(atten, 0.0, None))  # bright where attenuation is high
    img = gaussian_filter(img, 0.7)
    img = img + nrng.normal(0.0, 0.012, img.shape) * (0.5 + img)  # noise, stronger where fewer photons

    # Side marker (radiopaque, bright) in a corner, then collimation: unexposed border is bright.
    img[my : my + 18, mx : mx + 4] = 0.97
    img[my + 14 : my + 18, mx : mx + 12] = 0.97
    col = np.full((h, w), 0.92, np.float32)
    col[top:bottom, left:right] = img[top:bottom, left:right]
    out = np.clip(col, 0.0, 1.0)
    return np.round(out * 60000 + 1000).astype(np.uint16), boxes


def write_phantoms(
    out_dir: str | Path,
    n: int,
    seed: int = 0,
    size: tuple[int, int] = (512, 384),
    normal_share: float = 0.3,
) -> list[dict[str, Any]]:
    """Writes ``n`` phantoms as 16-bit PNGs in the FracAtlas layout plus ``boxes.json``.

    Image i uses seed ``seed * 100_000 + i``; about ``normal_share`` of them have no finding, the
    others one or two findings of random kinds.

    Returns:
        The records written to ``boxes.json``: file (relative to ``out_dir``), seed, size, boxes.
    """
    out = Path(out_dir)
    rng = np.random.default_rng(seed)
    records = []
    for i in range(n):
        normal = rng.random() < normal_share
        findings = () if normal else tuple(rng.choice(FINDINGS, size=int(rng.integers(1, 3))))
        image_seed = seed * 100_000 + i
        img, boxes = make_phantom(image_seed, size, findings)
        name = f"phantom_{seed}_{i:04d}"
        rel = Path("images") / ("Normal" if normal else "Abnormal") / f"{name}.png"
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(out / rel)  # uint16 array -> 16-bit greyscale PNG
        yolo = out / "Annotations" / "YOLO" / f"{name}.txt"
        yolo.parent.mkdir(parents=True, exist_ok=True)
        lines = []
        for b in boxes:
            x0, y0, x1, y1 = b["box"]
            cx, cy = (x0 + x1) / 2 / size[1], (y0 + y1) / 2 / size[0]
            lines.append(f"0 {cx:.6f} {cy:.6f} {(x1 - x0) / size[1]:.6f} {(y1 - y0) / size[0]:.6f}")
        yolo.write_text("\n".join(lines) + ("\n" if lines else ""))
        records.append({"file": rel.as_posix(), "seed": image_seed, "size": list(size), "boxes": boxes})
    (out / "boxes.json").write_text(json.dumps(records, indent=1) + "\n")
    return records
