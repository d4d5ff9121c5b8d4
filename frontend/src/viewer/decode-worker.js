// @ts-check
/**
 * Decodes the 16-bit display PNG off the main thread. The page's boot script starts the image
 * download first thing and this worker beside it, while the viewer's modules are still loading;
 * bytes come in and pixels go out as transferred buffers (no copies).
 *
 * Message in: {bytes: ArrayBuffer} (or {url} to fetch here).
 * Message out: {width, height, data: Uint16Array, fetchMs, decodeMs} or {error}.
 */

import { decodePng16 } from "./png16.js";

self.onmessage = async (/** @type {MessageEvent} */ e) => {
  try {
    const t0 = performance.now();
    /** @type {Uint8Array} */
    let bytes;
    if (e.data.bytes) {
      bytes = new Uint8Array(e.data.bytes);
    } else {
      const res = await fetch(e.data.url, { credentials: "same-origin" });
      if (!res.ok) throw new Error(`could not load the image: ${res.status}`);
      bytes = new Uint8Array(await res.arrayBuffer());
    }
    const t1 = performance.now();
    const png = await decodePng16(bytes);
    const out = { width: png.width, height: png.height, data: png.data, fetchMs: e.data.fetchMs ?? t1 - t0, decodeMs: performance.now() - t1 };
    /** @type {any} */ (self).postMessage(out, [png.data.buffer]);
  } catch (err) {
    self.postMessage({ error: String(/** @type {any} */ (err)?.message ?? err) });
  }
};
