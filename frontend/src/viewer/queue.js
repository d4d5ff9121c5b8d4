// @ts-check
/**
 * The labelling queue in the viewer. In queue mode (opened by "Label next"), Next asks the server
 * for the next image of the active-learning queue handed to this annotator alone, passing the
 * images already passed over so they are not handed back at once. While any annotator has an
 * image open, the viewer keeps its claim alive (the server lets an idle claim lapse after 10 min).
 */

/** @typedef {(method: string, url: string, body?: any) => Promise<import("./api.js").Reply>} Request */
/** @typedef {{getItem: (k: string) => string|null, setItem: (k: string, v: string) => void}} KeyValue */
/** @typedef {{level: string, text: string}} Notice */

// Images passed over, remembered per project for the browser tab (sessionStorage).
export const SKIPPED_MAX = 500;
// Well inside the server's CLAIM_TTL (10 min), so a hidden tab's timer slowed to once a minute still makes it.
export const CLAIM_REFRESH_MS = 4 * 60 * 1000;

export const QUEUE_EMPTY = "The labelling queue is empty: every image is labelled or open in someone else's viewer.";

/** @param {number|string} projectId */
export const skippedKey = (projectId) => `skelex.queue.skipped.${projectId}`;

/**
 * @param {KeyValue} storage
 * @param {number|string} projectId
 * @returns {number[]}
 */
export function readSkipped(storage, projectId) {
  try {
    const ids = JSON.parse(storage.getItem(skippedKey(projectId)) ?? "[]");
    return Array.isArray(ids) ? ids.filter((x) => Number.isInteger(x)) : [];
  } catch {
    return [];
  }
}

/**
 * @param {KeyValue} storage
 * @param {number|string} projectId
 * @param {number[]} ids
 */
export function writeSkipped(storage, projectId, ids) {
  try {
    storage.setItem(skippedKey(projectId), JSON.stringify(ids.slice(-SKIPPED_MAX)));
  } catch {
    // Storage full or disabled: the queue may hand a passed-over image back sooner; nothing is lost.
  }
}

/**
 * Asks the queue for the image after `imageId`.
 * @param {Request} request
 * @param {{next_api: string, viewer_url: string}} queue
 * @param {number} projectId
 * @param {number} imageId
 * @param {KeyValue} storage
 * @returns {Promise<{url: string}|{notice: Notice}>} where to go, or what to say
 */
export async function nextInQueue(request, queue, projectId, imageId, storage) {
  const skipped = readSkipped(storage, projectId).filter((id) => id !== imageId);
  skipped.push(imageId);
  const reply = await request("POST", queue.next_api, { skip: skipped });
  if (reply.ok && reply.status !== 204 && reply.data?.image?.id != null) {
    writeSkipped(storage, projectId, skipped);
    return { url: queue.viewer_url.replace("{id}", String(reply.data.image.id)) };
  }
  if (reply.status === 204) {
    // Start over: the next Next may hand back the images passed over.
    writeSkipped(storage, projectId, []);
    const text =
      skipped.length > 1
        ? "No other image in the queue for you: the rest are labelled, open in someone else's viewer, or ones you passed over. Press Next again to go back to those."
        : QUEUE_EMPTY;
    return { notice: { level: "info", text } };
  }
  const why = reply.status === 0 ? "you are offline" : (reply.data?.detail ?? `error ${reply.status}`);
  return { notice: { level: "error", text: `Could not ask the queue for the next image: ${why}.` } };
}

/**
 * Renews this viewer's claim on its image.
 * @param {Request} request
 * @param {string} claimUrl
 * @returns {Promise<{holder: string|null, at: string|null}|null>} who holds the image instead of
 *   this viewer (null: this viewer does, its claim made at `at`); null when the server could not be
 *   asked (the next renewal tries again)
 */
export async function refreshClaim(request, claimUrl) {
  const reply = await request("POST", claimUrl);
  if (reply.status === 409) return { holder: reply.data?.claimed_by || "someone else", at: null };
  return reply.ok ? { holder: null, at: reply.data?.claimed_at ?? null } : null;
}

/**
 * The request that hands the image back to the queue when this viewer leaves it: only the claim
 * this viewer made (`at`), so a reload or another tab of the same user that has claimed the image
 * since keeps it. Null when this viewer holds no claim to hand back.
 * @param {string} claimUrl
 * @param {string|null} holder who else holds the image (null: this viewer)
 * @param {string|null} at when this viewer's claim was made or last renewed
 * @returns {string|null} the URL to DELETE
 */
export function releaseUrl(claimUrl, holder, at) {
  if (holder !== null || !at) return null;
  return `${claimUrl}${claimUrl.includes("?") ? "&" : "?"}at=${encodeURIComponent(at)}`;
}

/**
 * What to say when the holder changes (null: nothing).
 * @param {string|null} before
 * @param {string|null} now
 * @returns {Notice|null}
 */
export function holderNotice(before, now) {
  if (!now || now === before) return null;
  return { level: "info", text: `${now} has this image open now: the queue handed it to them while this tab sat idle.` };
}
