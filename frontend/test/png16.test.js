// The PNG16 decoder on real 16-bit PNG files written by Pillow and by hand with every filter type.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { decodePng16, unfilter } from "../src/viewer/png16.js";

const W = 37;
const H = 23;
const expected = (x, y) => (x * 1237 + y * 4099 + ((x * y) % 97) * 13) % 65536;

for (const name of ["pillow16.png", "filters16.png"]) {
  test(`decodes ${name} to the exact 16-bit values`, async () => {
    const bytes = new Uint8Array(await readFile(new URL(`./fixtures/${name}`, import.meta.url)));
    const img = await decodePng16(bytes);
    assert.equal(img.width, W);
    assert.equal(img.height, H);
    assert.equal(img.bitDepth, 16);
    let wrong = 0;
    for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) if (img.data[y * W + x] !== expected(x, y)) wrong++;
    assert.equal(wrong, 0);
    assert.ok(Math.max(...img.data) > 255, "values above 8 bits survive");
  });
}

test("refuses files that are not PNG", async () => {
  await assert.rejects(decodePng16(new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8, 9])), /not a PNG/);
});

test("refuses a truncated PNG", async () => {
  const bytes = new Uint8Array(await readFile(new URL("./fixtures/pillow16.png", import.meta.url)));
  await assert.rejects(decodePng16(bytes.subarray(0, 60)));
});

test("unknown filter type is an error, not garbage", () => {
  assert.throws(() => unfilter(new Uint8Array([7, 0, 0]), 1, 2, 2), /filter type 7/);
});
