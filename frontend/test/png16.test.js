// The PNG16 decoder on real 16-bit PNG files written by Pillow and by hand with every filter type,
// whole and as a download delivers them: in pieces of any size, cut anywhere.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { deflateSync } from "node:zlib";
import { decodePng16, decodePng16Stream, unfilter } from "../src/viewer/png16.js";

const FIXTURES = ["pillow16.png", "filters16.png", "chunked16.png"];

/** @param {string} name */
async function fixture(name) {
  return new Uint8Array(await readFile(new URL(`./fixtures/${name}`, import.meta.url)));
}

/**
 * The bytes as a stream of pieces, the sizes taken in turn from `sizes`.
 * @param {Uint8Array} bytes
 * @param {number[]} sizes
 */
function pieces(bytes, sizes) {
  let at = 0;
  let k = 0;
  return new ReadableStream({
    pull(c) {
      if (at >= bytes.length) return c.close();
      const n = sizes[k++ % sizes.length];
      c.enqueue(bytes.slice(at, at + n));
      at += n;
    },
  });
}

/** @param {{width: number, height: number, data: Uint16Array}} img */
function wrongPixels(img) {
  let wrong = 0;
  for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) if (img.data[y * W + x] !== expected(x, y)) wrong++;
  return wrong;
}

const W = 37;
const H = 23;
const expected = (x, y) => (x * 1237 + y * 4099 + ((x * y) % 97) * 13) % 65536;

for (const name of FIXTURES) {
  test(`decodes ${name} to the exact 16-bit values`, async () => {
    const img = await decodePng16(await fixture(name));
    assert.equal(img.width, W);
    assert.equal(img.height, H);
    assert.equal(img.bitDepth, 16);
    assert.equal(wrongPixels(img), 0);
    assert.ok(Math.max(...img.data) > 255, "values above 8 bits survive");
  });

  test(`decodes ${name} streamed in pieces of any size, cut anywhere`, async () => {
    const bytes = await fixture(name);
    // Every size from 1 byte (each chunk header, length and CRC split) to larger than the file,
    // and irregular sizes that move the cuts around.
    const plans = [[1], [2], [3], [5], [7], [8], [13], [64], [75], [1000], [5000], [1, 9, 2, 33, 4, 170, 8]];
    for (const sizes of plans) {
      const img = await decodePng16Stream(pieces(bytes, sizes));
      assert.deepEqual([img.width, img.height, wrongPixels(img)], [W, H, 0], `pieces of ${sizes}`);
    }
  });
}

test("refuses a stream that is not a PNG, and one cut short", async () => {
  await assert.rejects(decodePng16Stream(pieces(new Uint8Array(20).fill(7), [3])), /not a PNG/);
  const bytes = await fixture("chunked16.png");
  for (const end of [5, 20, 40, 300, bytes.length - 100]) {
    await assert.rejects(decodePng16Stream(pieces(bytes.subarray(0, end), [11])), undefined, `cut at ${end}`);
  }
});

/**
 * A minimal PNG: signature, IHDR, one IDAT with `raw` deflated, IEND (CRCs are not checked).
 * @param {{width: number, height: number, bitDepth: number, colorType: number}} h
 * @param {Uint8Array} raw filter byte + row bytes, per row
 */
function png(h, raw) {
  const chunk = (/** @type {string} */ type, /** @type {Uint8Array} */ body) => {
    const out = new Uint8Array(12 + body.length);
    new DataView(out.buffer).setUint32(0, body.length);
    out.set([...type].map((c) => c.charCodeAt(0)), 4);
    out.set(body, 8);
    return out;
  };
  const ihdr = new Uint8Array(13);
  const dv = new DataView(ihdr.buffer);
  dv.setUint32(0, h.width);
  dv.setUint32(4, h.height);
  ihdr.set([h.bitDepth, h.colorType, 0, 0, 0], 8);
  const parts = [new Uint8Array([137, 80, 78, 71, 13, 10, 26, 10]), chunk("IHDR", ihdr), chunk("IDAT", deflateSync(raw)), chunk("IEND", new Uint8Array(0))];
  return new Uint8Array(Buffer.concat(parts));
}

test("refuses colour images", async () => {
  const bytes = png({ width: 2, height: 1, bitDepth: 8, colorType: 2 }, new Uint8Array(7));
  await assert.rejects(decodePng16Stream(pieces(bytes, [40])), /only greyscale/);
});

test("widens 8-bit greyscale to 16 bits", async () => {
  const img = await decodePng16(png({ width: 3, height: 2, bitDepth: 8, colorType: 0 }, new Uint8Array([0, 0, 1, 255, 2, 10, 10, 10])));
  // Row 2 is "Up": each byte adds the one above (mod 256).
  assert.deepEqual([...img.data], [0, 257, 65535, 10 * 257, 11 * 257, 9 * 257]);
});

test("a bad row stops the download instead of reading it to the end", async () => {
  const rows = new Uint8Array(64 * (1 + 512));
  rows[1 + 512] = 9; // the second row's filter type
  const bytes = png({ width: 256, height: 64, bitDepth: 16, colorType: 0 }, rows);
  // The file, then a slow tail (a download still running) the decoder must not wait for.
  let tail = 0;
  let cancelled = null;
  const source = new ReadableStream({
    async pull(c) {
      if (tail === 0) c.enqueue(bytes);
      else if (tail < 500) {
        await new Promise((r) => setTimeout(r, 2));
        c.enqueue(new Uint8Array(16));
      } else c.close();
      tail++;
    },
    cancel(reason) {
      cancelled = reason;
    },
  });
  await assert.rejects(decodePng16Stream(source), /filter type 9 on row 1/);
  // The cancel travels up the pipe chain asynchronously.
  for (let i = 0; i < 100 && !cancelled; i++) await new Promise((r) => setTimeout(r, 2));
  assert.ok(cancelled, "the download was cancelled");
  assert.ok(tail < 100, `stopped after ${tail} pieces`);
});

test("refuses files that are not PNG", async () => {
  await assert.rejects(decodePng16(new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8, 9])), /not a PNG/);
});

test("refuses a truncated PNG", async () => {
  const bytes = await fixture("pillow16.png");
  await assert.rejects(decodePng16(bytes.subarray(0, 60)));
});

test("unknown filter type is an error, not garbage", () => {
  assert.throws(() => unfilter(new Uint8Array([7, 0, 0]), 1, 2, 2), /filter type 7/);
});
