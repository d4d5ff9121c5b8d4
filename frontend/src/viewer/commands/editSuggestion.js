// @ts-check
/**
 * Command: correct a suggested box (moved or resized before accepting). It is an accept with a
 * different box: the annotation links the original suggestion and is saved as "suggestion-edited".
 */

import { acceptSuggestion } from "./acceptSuggestion.js";

/**
 * @param {import("../store.js").Store} store
 * @param {number} suggestionId
 * @param {import("../types.js").Box} box
 * @returns {import("../history.js").Command}
 */
export function editSuggestion(store, suggestionId, box) {
  return acceptSuggestion(store, suggestionId, box);
}
