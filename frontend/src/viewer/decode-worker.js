// @ts-check
/**
 * Fetches and decodes the 16-bit display PNG off the main thread. The page starts this worker
 * from a small inline script while the viewer's modules are still loading, so download and
 * decoding overlap with start-up; the pixels come back as a transferred buffer (no copy).
 *
 * Message in: {url}. Message out: {width, height, data: Uint16Array, fetchMs, decodeMs} or {error}.
 */

import { decodePng16 } from "./png16.js";

self.onmessage = async (/** @type {MessageEvent} */ e) => {
  try {
    const t0 = performance.now();
    const res = await fetch(e.data.url, { credentials: "same-origin" });
    if (!res.ok) throw new Error(`could not load the image: ${res.status}`);
    const bytes = new Uint8Array(await res.arrayBuffer());
    const t1 = performance.now();
    const png = await decodePng16(bytes);
    const out = { width: png.width, height: png.height, data: png.data, fetchMs: t1 - t0, decodeMs: performance.now() - t1 };
    /** @type {any} */ (self).postMessage(out, [png.data.buffer]);
  } catch (err) {
    self.postMessage({ error: String(/** @type {any} */ (err)?.message ?? err) });
  }
};
