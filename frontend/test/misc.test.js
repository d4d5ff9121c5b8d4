// Smaller parts: the image pyramid, time spent, and the shortcut table.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Pyramid, halve } from "../src/viewer/pyramid.js";
import { TimeSpent } from "../src/viewer/timer.js";
import { SHORTCUTS, shortcutFor } from "../src/viewer/keys.js";

test("halving averages 2x2 blocks and keeps odd edges", () => {
  const lvl = halve({ width: 3, height: 2, data: new Uint16Array([0, 4, 100, 8, 12, 200]) });
  assert.deepEqual([lvl.width, lvl.height], [2, 1]);
  assert.deepEqual([...lvl.data], [6, 150]);
});

test("the pyramid picks the level whose pixels are no bigger than a screen pixel", () => {
  const p = new Pyramid({ width: 1024, height: 1024, data: new Uint16Array(1024 * 1024) });
  assert.equal(p.forZoom(1).index, 0);
  assert.equal(p.forZoom(0.6).index, 0);
  assert.equal(p.forZoom(0.5).index, 1);
  assert.equal(p.forZoom(0.2).index, 2);
  assert.equal(p.forZoom(0.2).level.width, 256);
});

test("time spent counts only visible time and each take starts a new count", () => {
  let now = 0;
  const t = new TimeSpent(() => now);
  now = 1000;
  t.pause();
  now = 61000; // hidden for a minute
  t.resume();
  now = 61500;
  assert.equal(t.take(), 1500);
  now = 62000;
  assert.equal(t.take(), 500);
});

const key = (k, o = {}) => ({ key: k, code: o.code ?? "", shiftKey: !!o.shift, ctrlKey: !!o.ctrl, metaKey: false, altKey: false });

test("shortcuts: each key maps to one action, and the main ones are where the help says", () => {
  assert.equal(shortcutFor(key("a"))?.action, "accept");
  assert.equal(shortcutFor(key("A", { shift: true }))?.action, "acceptAll");
  assert.equal(shortcutFor(key("r"))?.action, "reject");
  assert.equal(shortcutFor(key("z", { ctrl: true }))?.action, "undo");
  assert.equal(shortcutFor(key("Z", { ctrl: true, shift: true }))?.action, "redo");
  assert.equal(shortcutFor(key("e"))?.action, "overlay");
  assert.equal(shortcutFor(key("n"))?.action, "next");
  assert.equal(shortcutFor(key("?", { shift: true }))?.action, "help");
  assert.equal(shortcutFor(key("!", { code: "Digit1", shift: true }))?.action, "preset:bone");
  assert.equal(shortcutFor(key("1", { code: "Digit1" }))?.action, "label");
  assert.equal(shortcutFor(key("H", { shift: true }))?.action, "flip");
  for (const s of SHORTCUTS) assert.ok(s.description.length > 3, s.keys);
});
