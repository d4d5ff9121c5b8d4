// @ts-check
/**
 * Command: accept a suggested box as is. The annotation carries the suggestion's id, so the
 * server records origin "suggestion-accepted" (or "suggestion-edited" if the box changed before
 * the save went out) and resolves the suggestion.
 */

import { makeAnnotation } from "../store.js";

/** @typedef {import("../store.js").Store} Store */

/**
 * @param {Store} store
 * @param {number} suggestionId
 * @param {import("../types.js").Box} [box] the edited box; omitted = the suggestion's own box
 * @param {string} [label] another label than the suggestion's (accepting it as edited)
 * @returns {import("../history.js").Command}
 */
export function acceptSuggestion(store, suggestionId, box, label) {
  const s = store.suggestion(suggestionId);
  if (!s) throw new Error(`no suggestion ${suggestionId}`);
  const relabelled = label !== undefined && label !== (s.label || store.state.currentLabel);
  const edited = box !== undefined || relabelled;
  const annotation = makeAnnotation({
    kind: "box",
    label: label ?? (s.label || store.state.currentLabel),
    x0: box ? box.x0 : s.x0,
    y0: box ? box.y0 : s.y0,
    x1: box ? box.x1 : s.x1,
    y1: box ? box.y1 : s.y1,
    suggestion: s.id,
    origin: edited ? "suggestion-edited" : "suggestion-accepted",
    author: store.config?.user?.id ?? null,
    author_name: store.config?.user?.name ?? "",
  });
  const before = s.state;
  return {
    label: edited ? "edit suggestion" : "accept suggestion",
    do() {
      if (!store.state.annotations.includes(annotation)) store.state.annotations.push(annotation);
      annotation.deleted = false;
      s.state = edited ? "edited" : "accepted";
      store.state.selected = annotation.lid;
      store.emit("annotations");
      store.emit("suggestions");
      store.emit("selection");
    },
    undo() {
      annotation.deleted = true;
      s.state = before;
      if (store.state.selected === annotation.lid) store.state.selected = null;
      store.emit("annotations");
      store.emit("suggestions");
      store.emit("selection");
    },
  };
}
