// @ts-check
/** Command: accept every pending suggested box of the image at once (one undo step). */

import { acceptSuggestion } from "./acceptSuggestion.js";

/**
 * @param {import("../store.js").Store} store
 * @returns {import("../history.js").Command}
 */
export function acceptAll(store) {
  const parts = store.pendingSuggestions().map((s) => acceptSuggestion(store, s.id));
  return {
    label: `accept ${parts.length} suggestions`,
    do() {
      for (const p of parts) p.do();
    },
    undo() {
      for (const p of [...parts].reverse()) p.undo();
    },
  };
}
