// @ts-check
/**
 * The 16-bit display image, downloaded and decoded.
 *
 * The viewer page's inline script starts `decode-worker.js` on the image before any module is
 * requested and leaves the answer in `window.skelexImage` (a promise of the worker's message), so
 * by the time these modules run the pixels are often already there. Where that could not happen
 * (no module workers, the worker failed to start, or `?decode=main`, the benchmark's switch) the
 * main thread downloads and decodes the image itself, streaming all the same.
 */

import { fetchStream } from "./api.js";
import { decodePng16Stream } from "./png16.js";

/**
 * @typedef {{width: number, height: number, data: Uint16Array, decodedMs: number, decodedIn: "worker"|"main"}} DisplayImage
 * `decodedMs`: when the pixels were ready, in ms since navigation start (the page's clock).
 */

/**
 * @param {string} url
 * @returns {Promise<DisplayImage>}
 */
async function onMainThread(url) {
  const png = await decodePng16Stream(await fetchStream(url));
  performance.mark("skelex:image-decoded");
  return { width: png.width, height: png.height, data: png.data, decodedMs: performance.now(), decodedIn: "main" };
}

/**
 * @param {any} msg the worker's answer
 * @returns {DisplayImage}
 */
function fromWorker(msg) {
  if (msg.error) throw new Error(msg.error);
  // The worker's clock starts when the worker does; both share the wall clock.
  const page = (/** @type {number} */ wall) => wall - performance.timeOrigin;
  if (msg.download) {
    // The page's own resource timing does not see the worker's requests.
    performance.mark("skelex:image-request", { startTime: page(msg.download.requestAt) });
    performance.mark("skelex:image-first-byte", { startTime: page(msg.download.firstByteAt) });
    performance.mark("skelex:image-last-byte", { startTime: page(msg.download.lastByteAt) });
  }
  const decodedMs = page(msg.decodedAt);
  performance.mark("skelex:image-decoded", { startTime: decodedMs });
  return { width: msg.width, height: msg.height, data: msg.data, decodedMs, decodedIn: "worker" };
}

/**
 * The page's image: the early worker's result, or decoded here when there is none. A decoding
 * error from the worker is final (the main thread would meet the same bytes); a worker that could
 * not run hands over to the main thread.
 * @param {string} url the display PNG (the same URL the page's script gave the worker)
 * @returns {Promise<DisplayImage>}
 */
export function loadDisplayImage(url) {
  const early = /** @type {Promise<any>|undefined} */ (/** @type {any} */ (window).skelexImage);
  if (!early) return onMainThread(url);
  return early.then(fromWorker, () => onMainThread(url));
}
