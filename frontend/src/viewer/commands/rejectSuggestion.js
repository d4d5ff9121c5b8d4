// @ts-check
/** Command: reject a suggested box (autosave posts the rejection). */

/** @typedef {import("../store.js").Store} Store */

/**
 * @param {Store} store
 * @param {number} suggestionId
 * @returns {import("../history.js").Command}
 */
export function rejectSuggestion(store, suggestionId) {
  const s = store.suggestion(suggestionId);
  if (!s) throw new Error(`no suggestion ${suggestionId}`);
  const before = s.state;
  return {
    label: "reject suggestion",
    do() {
      s.state = "rejected";
      if (store.state.selected === `s${s.id}`) store.state.selected = null;
      store.emit("suggestions");
      store.emit("selection");
    },
    undo() {
      s.state = before;
      store.emit("suggestions");
    },
  };
}
