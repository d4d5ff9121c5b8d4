// @ts-check
/** Command: delete a box (a soft delete on the server; undo brings it back, with its suggestion's state). */

/** @typedef {import("../store.js").Store} Store */

/**
 * @param {Store} store
 * @param {string} lid
 * @returns {import("../history.js").Command}
 */
export function deleteBox(store, lid) {
  const a = store.annotation(lid);
  if (!a) throw new Error(`no annotation ${lid}`);
  const suggestion = a.suggestion !== null ? store.suggestion(a.suggestion) : undefined;
  const suggestionState = suggestion?.state;
  return {
    label: "delete box",
    record: a,
    do() {
      a.deleted = true;
      // The server puts a suggestion back to pending when the box made from it goes.
      if (suggestion) suggestion.state = "pending";
      if (store.state.selected === lid) store.state.selected = null;
      store.emit("annotations");
      store.emit("selection");
    },
    undo() {
      a.deleted = false;
      if (suggestion && suggestionState) suggestion.state = suggestionState;
      store.state.selected = lid;
      store.emit("annotations");
      store.emit("selection");
    },
  };
}
