// @ts-check
/** Command: add a hand-drawn box (undo removes it; autosave creates or deletes it on the server). */

/** @typedef {import("../store.js").Store} Store */
/** @typedef {import("../types.js").Annotation} Annotation */

/**
 * @param {Store} store
 * @param {Annotation} annotation a new local record (see `makeAnnotation`)
 * @returns {import("../history.js").Command}
 */
export function addBox(store, annotation) {
  return {
    label: "draw box",
    do() {
      if (!store.state.annotations.includes(annotation)) store.state.annotations.push(annotation);
      annotation.deleted = false;
      store.state.selected = annotation.lid;
      store.emit("annotations");
      store.emit("selection");
    },
    undo() {
      annotation.deleted = true;
      if (store.state.selected === annotation.lid) store.state.selected = null;
      store.emit("annotations");
      store.emit("selection");
    },
  };
}
