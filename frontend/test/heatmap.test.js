// The error-map overlay: the typical bulk of a grey map becomes transparent, the hardest regions
// hot and opaque; a map that already has colour is drawn as it is.
import { test } from "node:test";
import assert from "node:assert/strict";
import { HEAT_FLOOR, HEAT_FULL, colourizeHeat, heatLut } from "../src/viewer/heatmap.js";

/** @param {number[]} greys */
const grey = (greys) => new Uint8ClampedArray(greys.flatMap((v) => [v, v, v, 255]));

test("typical error is transparent, the top of the map opaque and warm", () => {
  const px = grey([0, 12, HEAT_FLOOR, 120, HEAT_FULL, 255]);
  assert.equal(colourizeHeat(px), true);
  const alpha = [3, 7, 11, 15, 19, 23].map((o) => px[o]);
  assert.deepEqual(alpha.slice(0, 3), [0, 0, 0], "a map's median (~5-15) and below the floor: nothing drawn");
  assert.ok(alpha[3] > 0 && alpha[3] < 255);
  assert.deepEqual(alpha.slice(4), [255, 255]);
  assert.deepEqual([...px.slice(20, 23)], [255, 255, 255], "the very top is white");
  assert.ok(px[12] === 255 && px[14] === 0, "the middle is red to yellow, no blue");
});

test("opacity never falls as error rises", () => {
  const lut = heatLut();
  for (let v = 1; v < 256; v++) assert.ok(lut[v * 4 + 3] >= lut[(v - 1) * 4 + 3], `alpha at ${v}`);
});

test("a map that already has colour is left alone", () => {
  const px = new Uint8ClampedArray([255, 60, 0, 255, 0, 0, 0, 0]);
  const before = [...px];
  assert.equal(colourizeHeat(px), false);
  assert.deepEqual([...px], before);
});
