// @ts-check
/**
 * Unsaved edits survive a closed tab or a crash: while anything is unsaved it is written to
 * local storage (per image and user), and on the next load it is put back on top of what the
 * server has and saved. A record whose server version moved on in the meantime keeps its old
 * version, so its save meets the 409 and the user decides. A new record keeps its `client_uid`,
 * so its create, sent again, cannot make a second row; if the server already has it, the journalled
 * state goes onto that record instead.
 */

import { fromServer, isDirty, makeAnnotation, newClientUid } from "./store.js";

/** @typedef {import("./store.js").Store} Store */
/** @typedef {{getItem: (k: string) => string|null, setItem: (k: string, v: string) => void, removeItem: (k: string) => void}} KeyValue */

const FIELDS = /** @type {const} */ (["kind", "label", "head", "value", "x0", "y0", "x1", "y1", "suggestion", "version", "deleted", "origin"]);
/** What the user edits (the rest is the server's to say). */
const EDITS = /** @type {const} */ (["label", "value", "x0", "y0", "x1", "y1", "deleted"]);

/**
 * @param {number} imageId
 * @param {number|string} userId
 * @returns {string}
 */
export function journalKey(imageId, userId) {
  return `skelex:unsaved:${imageId}:${userId}`;
}

/**
 * Writes what is unsaved (or clears the entry when nothing is).
 * @param {Store} store
 * @param {KeyValue} storage
 * @param {string} key
 */
export function writeJournal(store, storage, key) {
  const annotations = store.state.annotations
    .filter(isDirty)
    .map((a) => ({ id: a.id, client_uid: a.client_uid, saved: a.saved, ...Object.fromEntries(FIELDS.map((f) => [f, a[f]])) }));
  const suggestions = store.state.suggestions.filter((s) => s.state !== s.savedState).map((s) => ({ id: s.id, state: s.state }));
  try {
    if (annotations.length || suggestions.length) storage.setItem(key, JSON.stringify({ annotations, suggestions }));
    else storage.removeItem(key);
  } catch {
    // Storage full or disabled: the in-page retry queue still holds the edits.
  }
}

/**
 * Puts journalled edits back on top of freshly loaded server state.
 * @param {Store} store
 * @param {KeyValue} storage
 * @param {string} key
 * @returns {number} how many records were restored
 */
export function restoreJournal(store, storage, key) {
  let data;
  try {
    data = JSON.parse(storage.getItem(key) ?? "null");
  } catch {
    data = null;
  }
  if (!data) return 0;
  let restored = 0;
  for (const j of data.annotations ?? []) {
    const fields = Object.fromEntries(FIELDS.map((f) => [f, j[f]]));
    const uid = j.client_uid ?? null;
    const local = j.id !== null ? store.state.annotations.find((a) => a.id === j.id) : undefined;
    const made = j.id === null && uid !== null ? store.state.annotations.find((a) => a.client_uid === uid) : undefined;
    if (made) {
      // Its create got through before the tab closed: edit that record, keeping the server's version.
      Object.assign(made, Object.fromEntries(EDITS.map((f) => [f, j[f]])));
      if (!isDirty(made)) continue;
    } else if (local) {
      Object.assign(local, fields);
      // What the server had when the edit was made: the save sends the difference from it.
      local.saved = j.saved ?? local.saved;
    } else if (j.id === null) {
      if (j.deleted) continue;
      const a = makeAnnotation({
        ...fields,
        client_uid: uid ?? newClientUid(), // a journal written before keys existed has none
        author: store.config?.user?.id ?? null,
        author_name: store.config?.user?.name ?? "",
      });
      if (a.kind === "head") {
        // My answer may have reached the server after all: edit that record instead of a second one.
        const mine = store.headAnswer(a.head);
        if (mine) {
          Object.assign(mine, { value: a.value, deleted: false });
          restored++;
          continue;
        }
      }
      store.state.annotations.push(a);
    } else {
      // Gone from the server's live list (deleted meanwhile): bring it back as a new record only if it was live here.
      if (j.deleted) continue;
      const a = fromServer({ ...fields, id: j.id, client_uid: uid });
      Object.assign(a, { saved: { ...(j.saved ?? {}), deleted: true } });
      store.state.annotations.push(a);
    }
    restored++;
  }
  for (const j of data.suggestions ?? []) {
    const s = store.suggestion(j.id);
    if (s && s.state === "pending" && s.savedState === "pending") {
      s.state = j.state;
      restored++;
    }
  }
  return restored;
}
