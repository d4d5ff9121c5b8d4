// @ts-check
/** Command: take back my answer to a head (it becomes unanswered; the server soft-deletes it). */

/**
 * @param {import("../store.js").Store} store
 * @param {string} head
 * @returns {import("../history.js").Command}
 */
export function clearHead(store, head) {
  const a = store.headAnswer(head);
  if (!a) throw new Error(`no answer to ${head}`);
  const before = a.deleted;
  return {
    label: `clear ${head}`,
    do() {
      a.deleted = true;
      store.emit("annotations");
    },
    undo() {
      a.deleted = before;
      store.emit("annotations");
    },
  };
}
