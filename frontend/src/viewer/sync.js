// @ts-check
/**
 * Autosave: makes the server hold what the store holds. It compares each record with what the
 * server last confirmed (`saved`) and sends the difference with the record's version, one request
 * at a time, in order. Network and server failures, and a lapsed sign-in (401), keep the edit and
 * retry with exponential backoff (never dropped); a 409 marks the record as conflicted until the user reloads or
 * overwrites; a 400 shows the reason and waits for the next change to that record; a 403 for who
 * the user is (role, someone else's record) takes the change back, since nothing would ever save it.
 *
 * Creates are at-least-once (a failed reply may hide a row the server made), so each carries the
 * record's `client_uid`: the server answers a repeat with the row it made (200, not a second row).
 */

import { isDirty, newClientUid, serverSnapshot, snapshot } from "./store.js";

/** @typedef {import("./store.js").Store} Store */
/** @typedef {import("./types.js").Annotation} Annotation */
/** @typedef {import("./api.js").Reply} Reply */

/**
 * @typedef {{
 *   createAnnotation: (body: any) => Promise<Reply>,
 *   updateAnnotation: (id: number, body: any) => Promise<Reply>,
 *   deleteAnnotation: (id: number, version: number) => Promise<Reply>,
 *   rejectSuggestion: (id: number) => Promise<Reply>,
 *   reopenSuggestion: (id: number) => Promise<Reply>,
 * }} SaveApi
 */

/**
 * Failures that a later attempt can get through: the network, the server, and a lapsed sign-in
 * (401: once the user signs in again, in another tab, the same request succeeds).
 * @param {Reply} r
 * @returns {boolean}
 */
export function retryable(r) {
  return r.status === 0 || r.status === 401 || r.status >= 500;
}

/**
 * @param {any} data a 400 body
 * @returns {string}
 */
export function errorText(data) {
  if (data?.errors) {
    return Object.entries(data.errors)
      .map(([k, v]) => `${k}: ${Array.isArray(v) ? v.join(" ") : String(v)}`)
      .join("; ");
  }
  return data?.detail ?? "refused by the server";
}

/**
 * The PATCH body: only the fields that differ from what the server has.
 * @param {Annotation} a
 * @returns {Record<string, any>}
 */
export function changedFields(a) {
  const now = snapshot(a);
  const saved = /** @type {Record<string, any>} */ (a.saved ?? {});
  /** @type {Record<string, any>} */
  const body = {};
  for (const [k, v] of Object.entries(now)) {
    if (k === "deleted") continue;
    if (a.kind === "head" && k !== "value") continue;
    if (a.kind === "box" && k === "value") continue;
    if (JSON.stringify(v) !== JSON.stringify(saved[k])) body[k] = v;
  }
  return body;
}

export class Autosave {
  /**
   * @param {Store} store
   * @param {SaveApi} api
   * @param {{imageId: number, timeSpent?: () => number, setTimer?: (fn: () => Promise<void>, ms: number) => any,
   *   baseDelay?: number, maxDelay?: number}} opts
   */
  constructor(store, api, opts) {
    this.store = store;
    this.api = api;
    this.imageId = opts.imageId;
    this.timeSpent = opts.timeSpent ?? (() => 0);
    this.setTimer = opts.setTimer ?? ((fn, ms) => setTimeout(fn, ms));
    this.baseDelay = opts.baseDelay ?? 1000;
    this.maxDelay = opts.maxDelay ?? 30000;
    this.failures = 0;
    this.running = false;
    this.again = false;
    /** @type {any} */
    this.retryTimer = null;
    /** @type {WeakMap<Annotation, string>} records refused (400) in this exact state */
    this.refused = new WeakMap();
  }

  /** @returns {Annotation[]} records waiting to be saved (not conflicted, not refused as they are) */
  pending() {
    return this.store.state.annotations.filter(
      (a) => isDirty(a) && !a.conflict && this.refused.get(a) !== JSON.stringify(snapshot(a)),
    );
  }

  /** @returns {number} unsaved changes, conflicted and refused ones included */
  unsavedCount() {
    const s = this.store.state;
    return s.annotations.filter(isDirty).length + s.suggestions.filter(rejectionUnsaved).length;
  }

  /**
   * @param {"saved"|"saving"|"offline"|"error"|"conflict"} status
   * @param {string} [message]
   */
  setStatus(status, message = "") {
    this.store.state.sync = { status, pending: this.unsavedCount(), message };
    this.store.emit("sync");
  }

  /**
   * Saves everything that differs from the server; safe to call at any time. Edits, the retry
   * timer, the `online` event and leaving the page all call it: while a pass is in flight a call
   * only asks for one more pass after it, so no request is ever sent twice at once.
   */
  async flush() {
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = true;
    try {
      do {
        this.again = false;
        const failed = await this.pass();
        if (failed) return;
      } while (this.again);
      this.failures = 0;
      const conflicted = this.store.state.annotations.some((a) => a.conflict);
      const refused = this.store.state.annotations.find((a) => a.error);
      if (conflicted) this.setStatus("conflict", "Someone else changed a box you edited");
      else if (refused) this.setStatus("error", refused.error);
      else this.setStatus("saved");
    } finally {
      this.running = false;
    }
  }

  /** @returns {Promise<boolean>} true when a failure stopped the pass (a retry is scheduled) */
  async pass() {
    for (const a of this.pending()) {
      this.setStatus("saving");
      const r = await this.saveOne(a);
      if (r && retryable(r)) {
        this.fail(r);
        return true;
      }
    }
    for (const s of this.store.state.suggestions) {
      if (!rejectionUnsaved(s)) continue;
      this.setStatus("saving");
      const reopen = s.state === "pending";  // an undone rejection
      const r = reopen ? await this.api.reopenSuggestion(s.id) : await this.api.rejectSuggestion(s.id);
      if (retryable(r)) {
        this.fail(r);
        return true;
      }
      // Saved, or refused because the server already holds another state: either way it decided.
      s.savedState = r.ok ? s.state : (r.data?.state ?? s.state);
    }
    return false;
  }

  /** @param {Reply} r */
  fail(r) {
    this.failures += 1;
    const delay = Math.min(this.baseDelay * 2 ** (this.failures - 1), this.maxDelay);
    const what = r.status === 0 ? "offline" : "error";
    const retry = `unsaved changes kept, retrying in ${Math.round(delay / 1000)} s`;
    const msg =
      r.status === 0
        ? `Offline: ${retry}`
        : r.status === 401
          ? `Signed out: sign in again (in another tab, to keep this page); ${retry}`
          : `Server error ${r.status}: ${retry}`;
    this.setStatus(what, msg);
    if (this.retryTimer === null) {
      this.retryTimer = this.setTimer(() => {
        this.retryTimer = null;
        return this.flush();
      }, delay);
    }
  }

  /**
   * @param {Annotation} a
   * @returns {Promise<Reply|null>} the failed reply when the request did not get through
   */
  async saveOne(a) {
    if (a.id !== null && a.saved?.deleted && !a.deleted) {
      // Brought back (undo of a delete): the server keeps deletions, so this is a new record,
      // under a new key (the old one names the deleted row).
      a.id = null;
      a.saved = null;
      a.version = 0;
      a.client_uid = newClientUid();
    }
    if (a.id === null) return a.deleted ? null : this.create(a);
    if (a.deleted) return this.remove(a);
    return this.update(a);
  }

  /**
   * @param {Annotation} a
   * @returns {Promise<Reply|null>}
   */
  async create(a) {
    const sent = snapshot(a);
    /** @type {Record<string, any>} */
    const body = { image: this.imageId, kind: a.kind, client_uid: a.client_uid, time_spent_ms: this.timeSpent() };
    if (a.kind === "box") Object.assign(body, { label: a.label, x0: a.x0, y0: a.y0, x1: a.x1, y1: a.y1 });
    else Object.assign(body, { head: a.head, value: a.value });
    if (a.suggestion !== null) body.suggestion = a.suggestion;
    const r = await this.api.createAnnotation(body);
    if (r.status === 200) {
      // An earlier send made this row: it holds what that send carried, which may predate the
      // latest edits; those go out as an update on the next pass.
      this.adopt(a, r.data, serverSnapshot(r.data));
      if (isDirty(a)) this.again = true;
      return null;
    }
    if (r.ok) {
      this.adopt(a, r.data, sent);
      return null;
    }
    if (r.status === 409 && a.kind === "head" && r.data?.current) {
      // My own earlier answer to this head (another tab): take its id and version, then update it.
      const cur = r.data.current;
      a.id = cur.id;
      a.version = cur.version;
      a.saved = { value: cur.value ?? null, label: a.label, x0: a.x0, y0: a.y0, x1: a.x1, y1: a.y1, deleted: false };
      this.again = true;
      return null;
    }
    return this.refuse(a, r);
  }

  /**
   * @param {Annotation} a
   * @returns {Promise<Reply|null>}
   */
  async update(a) {
    const sent = snapshot(a);
    const body = { version: a.version, ...changedFields(a), time_spent_ms: this.timeSpent() };
    const r = await this.api.updateAnnotation(/** @type {number} */ (a.id), body);
    if (r.ok) {
      this.adopt(a, r.data, sent);
      return null;
    }
    return this.refuse(a, r);
  }

  /**
   * @param {Annotation} a
   * @returns {Promise<Reply|null>}
   */
  async remove(a) {
    const r = await this.api.deleteAnnotation(/** @type {number} */ (a.id), a.version);
    if (r.ok || r.status === 404) {
      a.version += 1;
      a.saved = { ...(a.saved ?? snapshot(a)), deleted: true };
      if (a.suggestion !== null) {
        // The server puts the suggestion back to pending when its annotation goes.
        const s = this.store.suggestion(a.suggestion);
        if (s) s.savedState = "pending";
      }
      return null;
    }
    return this.refuse(a, r);
  }

  /**
   * @param {Annotation} a
   * @param {any} row the server's record
   * @param {import("./types.js").Saved} sent what the request carried
   */
  adopt(a, row, sent) {
    // A live refresh may have brought this record in already (the event can beat our response).
    const dupes = this.store.state.annotations.filter((x) => x !== a && x.id === row.id);
    if (dupes.length) this.store.state.annotations = this.store.state.annotations.filter((x) => !dupes.includes(x));
    a.id = row.id;
    a.version = row.version;
    a.origin = row.origin ?? a.origin;
    a.author = row.author ?? a.author;
    a.author_name = row.author_name ?? a.author_name;
    a.saved = sent;
    a.error = "";
    if (a.suggestion !== null) {
      const s = this.store.suggestion(a.suggestion);
      if (s) s.savedState = row.origin === "suggestion-accepted" ? "accepted" : "edited";
    }
    this.store.emit("annotations");
  }

  /**
   * Puts a record back to what the server last confirmed (a record the server never had goes), and
   * its suggestion back to its saved state.
   * @param {Annotation} a
   */
  revert(a) {
    const state = this.store.state;
    if (a.saved === null) {
      state.annotations = state.annotations.filter((x) => x !== a);
      if (state.selected === a.lid) state.selected = null;
    } else {
      Object.assign(a, a.saved);
    }
    a.error = "";
    if (a.suggestion !== null) {
      const s = this.store.suggestion(a.suggestion);
      if (s?.savedState) s.state = s.savedState;
    }
    this.store.emit("suggestions");
    this.store.emit("selection");
  }

  /**
   * @param {Annotation} a
   * @param {Reply} r
   * @returns {Reply|null} the reply when it should be retried later
   */
  refuse(a, r) {
    if (retryable(r)) return r;
    if (r.status === 409 && r.data?.current) {
      a.conflict = r.data.current;
      this.store.emit("conflict", a);
    } else if (r.status === 403 && STANDING_REFUSALS.has(r.data?.code)) {
      // Refused for who you are (your role, someone else's record): no retry or later visit will
      // save it, so the page goes back to what the server holds and the journal forgets it.
      this.revert(a);
      this.store.emit("notice", { level: "error", text: `Not saved: ${errorText(r.data)} Your change was taken back.` });
    } else {
      a.error = errorText(r.data);
      this.refused.set(a, JSON.stringify(snapshot(a)));
      this.store.emit("notice", { level: "error", text: `Not saved: ${a.error}` });
    }
    this.store.emit("annotations");
    return null;
  }
}

/**
 * Server refusals (403 `code`) that no retry changes: see skelex_web/projects/api_errors.py.
 */
export const STANDING_REFUSALS = new Set(["role_too_low", "not_your_annotation"]);

/**
 * A rejection (or the undo of one) the server has not recorded yet.
 * @param {{state: string, savedState?: string}} s
 * @returns {boolean}
 */
function rejectionUnsaved(s) {
  return (s.state === "rejected" && s.savedState === "pending") || (s.state === "pending" && s.savedState === "rejected");
}
