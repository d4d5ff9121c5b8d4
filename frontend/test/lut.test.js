// Window/level lookup table: the grey levels a radiologist sees for a window.
import { test } from "node:test";
import assert from "node:assert/strict";
import { applyLut, buildLut, dragWindow, preset, stats, windowValue } from "../src/viewer/lut.js";

const grey = (word) => word & 0xff;

test("values below the window are black, above are white, centre is mid grey", () => {
  const lut = buildLut({ center: 1000, width: 200, invert: false });
  assert.equal(grey(lut[0]), 0);
  assert.equal(grey(lut[899]), 0);
  assert.equal(grey(lut[1100]), 255);
  assert.equal(grey(lut[65535]), 255);
  assert.ok(Math.abs(grey(lut[1000]) - 128) <= 1);
  assert.equal(lut[1000] >>> 24, 0xff, "opaque");
});

test("the table agrees with the direct formula everywhere", () => {
  const wl = { center: 31000, width: 9000, invert: false };
  const lut = buildLut(wl);
  for (let v = 0; v < 65536; v += 97) assert.equal(grey(lut[v]), windowValue(v, wl.center, wl.width));
});

test("invert flips black and white", () => {
  const lut = buildLut({ center: 1000, width: 200, invert: true });
  assert.equal(grey(lut[0]), 255);
  assert.equal(grey(lut[2000]), 0);
});

test("monotonic: brighter stored values never display darker", () => {
  const lut = buildLut({ center: 20000, width: 5000, invert: false });
  for (let v = 1; v < 65536; v++) assert.ok(grey(lut[v]) >= grey(lut[v - 1]));
});

test("applyLut maps a sub-rectangle row by row", () => {
  const src = new Uint16Array([0, 10, 20, 30, 40, 50, 60, 70, 80]); // 3x3
  const lut = new Uint32Array(65536).map((_, i) => i);
  const out = new Uint32Array(4);
  applyLut(src, 3, 1, 1, 2, 2, lut, out);
  assert.deepEqual([...out], [40, 50, 70, 80]);
});

test("presets: bone is narrower and higher than soft tissue; full spans the range", () => {
  const s = { min: 1000, max: 61000, p1: 2000, p99: 60000 };
  const bone = preset("bone", s);
  const soft = preset("soft", s);
  const full = preset("full", s);
  assert.ok(bone.width < soft.width);
  assert.ok(bone.center > soft.center);
  assert.deepEqual(full, { center: 31000, width: 60000 });
  assert.deepEqual(preset("auto", s), { center: 31000, width: 58000 });
  assert.deepEqual(preset("auto", { ...s, center: 500, width: 100 }), { center: 500, width: 100 });
});

test("stats finds the range and robust percentiles", () => {
  const data = new Uint16Array(10000).map((_, i) => i);
  data[0] = 65535;
  const s = stats(data, 1);
  assert.equal(s.min, 1);
  assert.equal(s.max, 65535);
  assert.ok(Math.abs(s.p1 - 100) <= 2);
  assert.ok(Math.abs(s.p99 - 9900) <= 2);
});

test("dragging right widens the window, down raises the level", () => {
  const start = { center: 30000, width: 10000 };
  assert.ok(dragWindow(start, 50, 0, 60000).width > start.width);
  assert.ok(dragWindow(start, 0, 50, 60000).center > start.center);
  assert.equal(dragWindow(start, -1e6, 0, 60000).width, 1, "never a zero-width window");
});
