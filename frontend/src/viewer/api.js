// @ts-check
/**
 * The only caller of `fetch` in the viewer (on the page and in its decoding worker): the REST API
 * under /api/ with the session cookie and Django's CSRF token, and the image files. Every API call
 * resolves to `{ok, status, data}`; a network failure resolves with status 0 so the autosave queue
 * can tell "offline" from "refused".
 */

/** @typedef {{ok: boolean, status: number, data: any}} Reply */

/**
 * @param {string} name
 * @returns {string}
 */
export function cookie(name) {
  if (typeof document === "undefined") return "";
  for (const part of document.cookie.split(";")) {
    const [k, ...v] = part.trim().split("=");
    if (k === name) return decodeURIComponent(v.join("="));
  }
  return "";
}

/**
 * @param {string} method
 * @param {string} url
 * @param {any} [body]
 * @param {{keepalive?: boolean}} [opts] keepalive: the browser finishes the request after the page is gone
 * @returns {Promise<Reply>}
 */
export async function request(method, url, body, opts = {}) {
  /** @type {Record<string, string>} */
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET") headers["X-CSRFToken"] = cookie("csrftoken");
  let res;
  try {
    res = await fetch(url, {
      method,
      headers,
      credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body),
      keepalive: opts.keepalive ?? false,
    });
  } catch (err) {
    return { ok: false, status: 0, data: { detail: `Network error: ${String(err)}` } };
  }
  let data = null;
  if (res.status !== 204) {
    try {
      data = await res.json();
    } catch {
      data = { detail: `${res.status} ${res.statusText}` };
    }
  }
  return { ok: res.ok, status: res.status, data };
}

/**
 * Sends a request that must outlive the page (a tab closing, the viewer moving to another image).
 * Nothing waits for the answer; if it cannot be sent, the claim lapses on the server's clock.
 * @param {string} method
 * @param {string} url
 */
export function sendOnLeave(method, url) {
  void request(method, url, undefined, { keepalive: true });
}

/**
 * Follows DRF pagination to the end.
 * @param {string} url
 * @returns {Promise<{ok: boolean, status: number, data: any[]}>}
 */
async function listAll(url) {
  /** @type {any[]} */
  const out = [];
  /** @type {string|null} */
  let next = url;
  while (next) {
    const r = await request("GET", next);
    if (!r.ok) return { ok: false, status: r.status, data: out };
    if (Array.isArray(r.data)) return { ok: true, status: r.status, data: r.data };
    out.push(...r.data.results);
    next = r.data.next;
  }
  return { ok: true, status: 200, data: out };
}

/**
 * The display PNG's bytes as they arrive, to decode while the rest is still coming (called in the
 * decoding worker, or on the page where no worker runs).
 * @param {string} url
 * @returns {Promise<ReadableStream<Uint8Array>>}
 */
export async function fetchStream(url) {
  const res = await fetch(url, { credentials: "same-origin" });
  if (!res.ok || !res.body) throw new Error(`could not load ${url}: ${res.status}`);
  return res.body;
}

/**
 * An 8-bit image (thumbnail, error map) decoded by the browser, or null when there is none.
 * @param {string} url
 * @returns {Promise<ImageBitmap|null>}
 */
export async function fetchBitmap(url) {
  try {
    const res = await fetch(url, { credentials: "same-origin" });
    if (!res.ok) return null;
    return await createImageBitmap(await res.blob());
  } catch {
    return null;
  }
}

export const api = {
  /** @param {number} id */
  image: (id) => request("GET", `/api/images/${id}/`),
  /** @param {number} imageId */
  annotations: (imageId) => listAll(`/api/annotations/?image=${imageId}`),
  /** @param {number} imageId */
  suggestions: (imageId) => listAll(`/api/suggestions/?image=${imageId}`),
  /** @param {any} body */
  createAnnotation: (body) => request("POST", "/api/annotations/", body),
  /**
   * @param {number} id
   * @param {any} body must carry `version`
   */
  updateAnnotation: (id, body) => request("PATCH", `/api/annotations/${id}/`, body),
  /**
   * @param {number} id
   * @param {number} version
   */
  deleteAnnotation: (id, version) => request("DELETE", `/api/annotations/${id}/?version=${version}`),
  /** @param {number} id */
  annotation: (id) => request("GET", `/api/annotations/${id}/`),
  /** @param {number} id */
  rejectSuggestion: (id) => request("POST", `/api/suggestions/${id}/reject/`, {}),
  reopenSuggestion: (id) => request("POST", `/api/suggestions/${id}/reopen/`, {}),
};
