// Boxes and the view transform: what the pointer hits, how boxes move and resize, and that
// image↔screen coordinates survive zoom, pan, rotation and flips.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  TAG_H, clampBox, fitZoom, hitBox, hitHandle, length, moveBox, normalize, placeTag, resizeBox, sameBox, toImage,
  toScreen, visibleRect, zoomAt,
} from "../src/viewer/geometry.js";

const view = (over = {}) => ({ zoom: 1, panX: 0, panY: 0, rotation: 0, flipH: false, flipV: false, vw: 800, vh: 600, iw: 400, ih: 300, ...over });
const close = (a, b, eps = 1e-9) => assert.ok(Math.abs(a - b) <= eps, `${a} ≉ ${b}`);

test("normalize orders corners whichever way the box was dragged", () => {
  assert.deepEqual(normalize(10, 20, 5, 2), { x0: 5, y0: 2, x1: 10, y1: 20 });
});

test("hit test picks the smallest box under the point, with tolerance", () => {
  const big = { x0: 0, y0: 0, x1: 100, y1: 100, id: "big" };
  const small = { x0: 40, y0: 40, x1: 60, y1: 60, id: "small" };
  assert.equal(hitBox([small, big], { x: 50, y: 50 })?.id, "small");
  assert.equal(hitBox([small, big], { x: 10, y: 10 })?.id, "big");
  assert.equal(hitBox([small, big], { x: 103, y: 50 }), null);
  assert.equal(hitBox([small, big], { x: 103, y: 50 }, 4)?.id, "big");
});

test("handles are found at corners and edge midpoints within tolerance", () => {
  const b = { x0: 10, y0: 10, x1: 50, y1: 30 };
  assert.equal(hitHandle(b, { x: 11, y: 9 }, 3), "nw");
  assert.equal(hitHandle(b, { x: 50, y: 30 }, 3), "se");
  assert.equal(hitHandle(b, { x: 30, y: 31 }, 3), "s");
  assert.equal(hitHandle(b, { x: 49, y: 20 }, 3), "e");
  assert.equal(hitHandle(b, { x: 30, y: 20 }, 3), null);
});

test("resizing by a corner moves only that corner; past the opposite edge it flips", () => {
  const b = { x0: 10, y0: 10, x1: 50, y1: 30 };
  assert.deepEqual(resizeBox(b, "se", { x: 60, y: 40 }, 400, 300), { x0: 10, y0: 10, x1: 60, y1: 40 });
  assert.deepEqual(resizeBox(b, "n", { x: 999, y: 5 }, 400, 300), { x0: 10, y0: 5, x1: 50, y1: 30 });
  assert.deepEqual(resizeBox(b, "w", { x: 70, y: 0 }, 400, 300), { x0: 50, y0: 10, x1: 70, y1: 30 });
  assert.deepEqual(resizeBox(b, "se", { x: 900, y: 900 }, 400, 300), { x0: 10, y0: 10, x1: 400, y1: 300 });
});

test("moving keeps the size and stays inside the image", () => {
  const b = { x0: 10, y0: 10, x1: 50, y1: 30 };
  assert.deepEqual(moveBox(b, 5, 5, 400, 300), { x0: 15, y0: 15, x1: 55, y1: 35 });
  assert.deepEqual(moveBox(b, 1000, -1000, 400, 300), { x0: 360, y0: 0, x1: 400, y1: 20 });
});

test("clampBox clips to the image and sameBox uses the 0.5 px tolerance", () => {
  assert.deepEqual(clampBox({ x0: -5, y0: 10, x1: 500, y1: 20 }, 400, 300), { x0: 0, y0: 10, x1: 400, y1: 20 });
  assert.ok(sameBox({ x0: 1, y0: 1, x1: 2, y1: 2 }, { x0: 1.4, y0: 1, x1: 2, y1: 2.5 }));
  assert.ok(!sameBox({ x0: 1, y0: 1, x1: 2, y1: 2 }, { x0: 1.6, y0: 1, x1: 2, y1: 2 }));
});

test("identity view centres the image", () => {
  const v = view();
  assert.deepEqual(toScreen(v, { x: 200, y: 150 }), { x: 400, y: 300 });
  assert.deepEqual(toScreen(v, { x: 0, y: 0 }), { x: 200, y: 150 });
});

test("rotating 90° clockwise sends the image's top-left corner to the top-right", () => {
  const v = view({ rotation: 1 });
  const tl = toScreen(v, { x: 0, y: 0 });
  const tr = toScreen(v, { x: 400, y: 0 });
  close(tl.x, 400 + 150);
  close(tl.y, 300 - 200);
  assert.ok(tr.y > tl.y, "image x now points down the screen");
});

test("flip H mirrors left and right", () => {
  const v = view({ flipH: true });
  close(toScreen(v, { x: 0, y: 0 }).x, 600);
  close(toScreen(v, { x: 400, y: 0 }).x, 200);
});

for (const rotation of [0, 1, 2, 3]) {
  for (const flipH of [false, true]) {
    test(`screen→image inverts image→screen (rotation ${rotation * 90}°, flipH ${flipH}, zoom 2.5, pan)`, () => {
      const v = view({ rotation, flipH, flipV: rotation === 2, zoom: 2.5, panX: -37, panY: 12 });
      for (const p of [{ x: 0, y: 0 }, { x: 123.5, y: 77.25 }, { x: 400, y: 300 }]) {
        const back = toImage(v, toScreen(v, p));
        close(back.x, p.x, 1e-6);
        close(back.y, p.y, 1e-6);
      }
    });
  }
}

test("fit zoom accounts for rotation", () => {
  assert.equal(fitZoom(view({ iw: 1600, ih: 600 })), 0.5);
  assert.equal(fitZoom(view({ iw: 1600, ih: 600, rotation: 1 })), 0.375);
});

test("zooming at a point keeps the image point under the cursor", () => {
  const v = view({ rotation: 1, flipV: true });
  const s = { x: 333, y: 222 };
  const before = toImage(v, s);
  const after = toImage(zoomAt(v, 3, s), s);
  close(after.x, before.x, 1e-6);
  close(after.y, before.y, 1e-6);
});

test("visible rect is the whole image at fit, a part of it when zoomed in", () => {
  assert.deepEqual(visibleRect(view()), { x0: 0, y0: 0, x1: 400, y1: 300 });
  const r = visibleRect(view({ zoom: 8 }));
  assert.deepEqual(r, { x0: 150, y0: 112, x1: 250, y1: 188 });
});

test("length is in mm when the pixel spacing is known", () => {
  assert.deepEqual(length({ x: 0, y: 0 }, { x: 3, y: 4 }, null, null), { px: 5, mm: null });
  const m = length({ x: 0, y: 0 }, { x: 3, y: 4 }, 0.2, 0.1);
  close(m.mm, Math.hypot(0.3, 0.8));
});

test("name tags of boxes that start close together are stacked, not drawn over each other", () => {
  const placed = [];
  const put = (x, y, w) => {
    const at = placeTag(x, y, w, placed);
    placed.push({ x, y: at - TAG_H, w, h: TAG_H });
    return at;
  };
  assert.equal(put(100, 50, 80), 50, "the first goes where it wants");
  assert.equal(put(140, 58, 80), 58 + TAG_H, "overlapping: one tag lower");
  assert.equal(put(300, 52, 80), 52, "clear of the others: where it wants");
  assert.equal(put(100, 50, 80), 50 + 3 * TAG_H, "below both tags it would cover");
});
