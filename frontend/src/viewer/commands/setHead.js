// @ts-check
/** Command: answer one image-level head (a class, a list of classes, or "unknown"). */

import { makeAnnotation } from "../store.js";

/**
 * @param {import("../store.js").Store} store
 * @param {string} head
 * @param {any} value
 * @param {number|null} [suggestionId] the head prediction the user confirmed (links provenance)
 * @returns {import("../history.js").Command}
 */
export function setHead(store, head, value, suggestionId = null) {
  let a = store.headAnswer(head);
  const created = !a || a.deleted;
  if (!a) {
    a = makeAnnotation({
      kind: "head",
      head,
      value: null,
      deleted: true,
      author: store.config?.user?.id ?? null,
      author_name: store.config?.user?.name ?? "",
    });
    store.state.annotations.push(a);
  }
  const rec = a;
  const before = { value: rec.value, deleted: rec.deleted, suggestion: rec.suggestion };
  // Only a record not yet on the server can still carry the link to the prediction.
  const link = rec.id === null && suggestionId !== null ? suggestionId : rec.suggestion;
  return {
    label: `answer ${head}`,
    do() {
      rec.value = value;
      rec.deleted = false;
      rec.suggestion = link;
      store.emit("annotations");
    },
    undo() {
      rec.value = before.value;
      rec.suggestion = before.suggestion;
      rec.deleted = created ? true : before.deleted;
      store.emit("annotations");
    },
  };
}
