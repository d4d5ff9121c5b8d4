// Benchmark: the viewer's per-image work on a 2880×2304 16-bit PNG, with CPU time beside wall
// time (on a shared, loaded machine the CPU time is what an idle machine's wall time would be).
// Usage: node bench/decode.bench.js path/to/16bit.png   (make one with tests/e2e/seed.py's radiograph())
import { readFile } from "node:fs/promises";
import { decodePng16, decodePng16Stream, inflate, parseChunks, unfilter } from "../src/viewer/png16.js";
import { Pyramid } from "../src/viewer/pyramid.js";
import { applyLut, buildLut, stats } from "../src/viewer/lut.js";

const file = process.argv[2];
if (!file) {
  console.error("usage: node bench/decode.bench.js FILE.png");
  process.exit(2);
}
const bytes = new Uint8Array(await readFile(file));

/** @param {string} name @param {() => any} fn */
async function time(name, fn, reps = 5) {
  let best = Infinity;
  let bestCpu = Infinity;
  let out;
  for (let i = 0; i < reps; i++) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    out = await fn();
    const wall = performance.now() - t0;
    const c = process.cpuUsage(c0);
    best = Math.min(best, wall);
    bestCpu = Math.min(bestCpu, (c.user + c.system) / 1000);
  }
  console.log(`${name.padEnd(34)} wall ${best.toFixed(1).padStart(7)} ms   cpu ${bestCpu.toFixed(1).padStart(7)} ms`);
  return out;
}

/**
 * The file as a stream of pieces, the way a download delivers it.
 * @param {Uint8Array} b
 * @param {number} size
 */
function pieces(b, size) {
  let at = 0;
  return new ReadableStream({
    pull(c) {
      if (at >= b.length) return c.close();
      c.enqueue(b.subarray(at, at + size));
      at += size;
    },
  });
}

const h = parseChunks(bytes);
console.log(`${file}: ${h.width}x${h.height}, ${h.bitDepth}-bit, ${(bytes.length / 1e6).toFixed(1)} MB`);
const raw = await time("inflate (DecompressionStream)", () => inflate(h.idat));
const rows = await time("unfilter", () => unfilter(raw, h.height, h.width * 2, 2));
const data = await time("big-endian → Uint16Array", () => {
  const n = h.width * h.height;
  const d = new Uint16Array(n);
  for (let i = 0, j = 0; i < n; i++, j += 2) d[i] = (rows[j] << 8) | rows[j + 1];
  return d;
});
await time("whole decode, file in memory", () => decodePng16(bytes));
await time("whole decode, fed in 64 KB pieces", () => decodePng16Stream(pieces(bytes, 65536)));
await time("stats (histogram, 1/7 sample)", () => stats(data));
const pyr = await time("pyramid level 1 (2x2 means)", () => {
  const p = new Pyramid({ width: h.width, height: h.height, data });
  p.forZoom(0.39);
  return p;
});
const lut = await time("build LUT (65,536 entries)", () => buildLut({ center: 30000, width: 20000, invert: false }));
const level = pyr.levels[1];
const out = new Uint32Array(level.width * level.height);
await time(`apply LUT to level 1 (${level.width}x${level.height})`, () => applyLut(level.data, level.width, 0, 0, level.width, level.height, lut, out));
const full = new Uint32Array(h.width * h.height);
await time(`apply LUT to full image`, () => applyLut(data, h.width, 0, 0, h.width, h.height, lut, full));
