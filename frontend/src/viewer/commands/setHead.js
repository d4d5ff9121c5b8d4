// @ts-check
/** Command: answer one image-level head (a class, a list of classes, or "unknown"). */

import { makeAnnotation } from "../store.js";

/**
 * @param {import("../store.js").Store} store
 * @param {string} head
 * @param {any} value
 * @returns {import("../history.js").Command}
 */
export function setHead(store, head, value) {
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
  const before = { value: rec.value, deleted: rec.deleted };
  return {
    label: `answer ${head}`,
    do() {
      rec.value = value;
      rec.deleted = false;
      store.emit("annotations");
    },
    undo() {
      rec.value = before.value;
      rec.deleted = created ? true : before.deleted;
      store.emit("annotations");
    },
  };
}
