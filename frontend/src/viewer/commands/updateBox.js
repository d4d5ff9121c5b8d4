// @ts-check
/** Command: change a box's corners and/or label (move, resize, relabel). */

/** @typedef {import("../store.js").Store} Store */
/** @typedef {{x0: number|null, y0: number|null, x1: number|null, y1: number|null, label: string}} Fields */

/**
 * @param {Store} store
 * @param {string} lid
 * @param {Partial<Fields>} after the fields to set
 * @param {Partial<Fields>} [before] their values before (taken from the record when omitted)
 * @returns {import("../history.js").Command}
 */
export function updateBox(store, lid, after, before) {
  const a = store.annotation(lid);
  if (!a) throw new Error(`no annotation ${lid}`);
  /** @type {Partial<Fields>} */
  const prev = before ?? Object.fromEntries(Object.keys(after).map((k) => [k, /** @type {any} */ (a)[k]]));
  return {
    label: "label" in after && Object.keys(after).length === 1 ? "set label" : "change box",
    record: a,
    do() {
      Object.assign(a, after);
      store.emit("annotations");
    },
    undo() {
      Object.assign(a, prev);
      store.emit("annotations");
    },
  };
}
