// @ts-check
/**
 * Conflicts (HTTP 409): the server's current annotation differs from the version we edited.
 * These pure functions say what changed and resolve by reloading theirs or overwriting with ours.
 */

import { serverSnapshot, snapshot } from "./store.js";

/** @typedef {import("./types.js").Annotation} Annotation */

const FIELDS = /** @type {const} */ (["label", "x0", "y0", "x1", "y1", "value", "deleted"]);

/**
 * @param {any} v
 * @returns {string}
 */
function show(v) {
  if (v === null || v === undefined) return "—";
  if (typeof v === "number") return Number.isInteger(v) ? String(v) : v.toFixed(1);
  if (typeof v === "boolean") return v ? "yes" : "no";
  if (typeof v === "string") return v;
  return JSON.stringify(v);
}

/**
 * The fields where my local record and the server's current one differ.
 * @param {Annotation} mine
 * @param {any} current the server's annotation (`deleted` may be absent: then it is live)
 * @returns {{field: string, mine: string, theirs: string}[]}
 */
export function conflictRows(mine, current) {
  const theirs = { ...current, deleted: Boolean(current?.is_deleted ?? current?.deleted ?? false) };
  /** @type {{field: string, mine: string, theirs: string}[]} */
  const rows = [];
  for (const f of FIELDS) {
    if (mine.kind === "head" && f !== "value" && f !== "deleted") continue;
    if (mine.kind === "box" && f === "value") continue;
    const a = /** @type {any} */ (mine)[f];
    const b = theirs[f];
    if (JSON.stringify(a ?? null) !== JSON.stringify(b ?? null)) rows.push({ field: f, mine: show(a), theirs: show(b) });
  }
  return rows;
}

/**
 * Take the server's version: local fields become theirs and nothing is left to save.
 * @param {Annotation} a
 * @param {any} current
 */
export function resolveReload(a, current) {
  Object.assign(a, {
    label: current.label ?? "",
    x0: current.x0,
    y0: current.y0,
    x1: current.x1,
    y1: current.y1,
    value: current.value ?? null,
    origin: current.origin ?? a.origin,
    author: current.author ?? a.author,
    author_name: current.author_name ?? a.author_name,
    version: current.version,
    deleted: Boolean(current.is_deleted ?? current.deleted ?? false),
    conflict: null,
    error: "",
  });
  a.saved = snapshot(a);
}

/**
 * Keep mine: adopt the server's version number so the next save replaces theirs.
 * @param {Annotation} a
 * @param {any} current
 */
export function resolveOverwrite(a, current) {
  a.version = current.version;
  a.conflict = null;
  a.error = "";
  // What the server holds now is theirs: saving must send every field that differs from it.
  a.saved = serverSnapshot(current);
}

/**
 * Merges a fresh server listing into local state after a live notice: records I have not
 * touched take the server's values; records with unsaved edits are kept (their save will meet
 * the conflict); new server records are added; records gone from the server are dropped unless
 * they are mine and unsaved, or deleted here: those stay, hidden, so that undoing the delete brings
 * back the record the undo history holds (it is then saved as a new one). A server record carrying the `client_uid` of a record I have not
 * seen created is that record (its create got through, the reply did not): it takes the id.
 * @param {Annotation[]} local
 * @param {any[]} server
 * @param {(row: any) => Annotation} fromServer
 * @param {(a: Annotation) => boolean} isDirty
 * @returns {{annotations: Annotation[], changed: Annotation[]}}
 */
export function mergeRemote(local, server, fromServer, isDirty) {
  const byId = new Map(server.map((r) => [r.id, r]));
  const byUid = new Map(server.filter((r) => r.client_uid).map((r) => [r.client_uid, r]));
  const held = new Set(local.map((a) => a.id));
  /** @type {Annotation[]} */
  const out = [];
  /** @type {Annotation[]} */
  const changed = [];
  const seen = new Set();
  for (const a of local) {
    const made = a.id === null && a.client_uid ? byUid.get(a.client_uid) : undefined;
    if (made && !held.has(made.id)) {
      // Mine, created on the server: the save sends only what differs from what it holds.
      Object.assign(a, { id: made.id, version: made.version, origin: made.origin ?? a.origin, saved: serverSnapshot(made) });
      held.add(made.id);
    }
    if (a.id === null) {
      out.push(a);
      continue;
    }
    seen.add(a.id);
    const row = byId.get(a.id);
    if (!row) {
      if (a.deleted || isDirty(a)) out.push(a);
      else changed.push(a);
      continue;
    }
    if (row.version > a.version && !isDirty(a)) {
      resolveReload(a, row);
      changed.push(a);
    }
    out.push(a);
  }
  for (const row of server) {
    if (seen.has(row.id)) continue;
    const a = fromServer(row);
    out.push(a);
    changed.push(a);
  }
  return { annotations: out, changed };
}
