// @ts-check
/**
 * Downloads and decodes the 16-bit display PNG off the main thread. The page starts this worker
 * first thing (an inline script in <head>, before the viewer's modules are requested) and posts it
 * the image's URL; the download goes through `api.js` like every other request, and its body is
 * decoded as it arrives (`decodePng16Stream`), so inflating and unfiltering overlap the download
 * and the loading of the viewer's modules. The body is read here, not on the page: a stream handed
 * over from the page would be fed by the page's main thread, which is busy compiling modules then.
 * The pixels go back as a transferred buffer (no copy).
 *
 * Message in: {url}.
 * Message out: {width, height, data: Uint16Array, decodedAt, download: {requestAt, firstByteAt,
 * lastByteAt}|null} or {error}. Times are wall-clock ms (performance.timeOrigin + performance.now()):
 * this worker's clock does not start at the page's navigation.
 */

import { fetchStream } from "./api.js";
import { decodePng16Stream } from "./png16.js";

self.onmessage = async (/** @type {MessageEvent} */ e) => {
  try {
    const png = await decodePng16Stream(await fetchStream(e.data.url));
    const wall = (/** @type {number} */ t) => performance.timeOrigin + t;
    const out = { width: png.width, height: png.height, data: png.data, decodedAt: wall(performance.now()), download: /** @type {object|null} */ (null) };
    const r = /** @type {PerformanceResourceTiming|undefined} */ (performance.getEntriesByName(new URL(e.data.url, self.location.href).href)[0]);
    if (r) out.download = { requestAt: wall(r.startTime), firstByteAt: wall(r.responseStart), lastByteAt: wall(r.responseEnd) };
    /** @type {any} */ (self).postMessage(out, [png.data.buffer]);
  } catch (err) {
    self.postMessage({ error: String(/** @type {any} */ (err)?.message ?? err) });
  }
};
