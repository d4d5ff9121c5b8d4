// @ts-check
/** The `?` shortcut list and the conflict dialog (what changed, reload theirs or overwrite with mine). */

import { el } from "./dom.js";
import { SHORTCUTS } from "../keys.js";
import { conflictRows, resolveOverwrite, resolveReload } from "../conflict.js";

/** @param {HTMLDialogElement} dialog */
export function showHelp(dialog) {
  dialog.replaceChildren(
    el("h2", { text: "Keyboard shortcuts" }),
    el("table", { class: "keys" }, ...SHORTCUTS.map((s) => el("tr", {}, el("td", {}, el("kbd", { text: s.keys })), el("td", { text: s.description })))),
    el("p", { class: "muted", text: "Mouse: left-drag draws or edits boxes; right-drag or Ctrl+drag sets window/level; middle-drag or Space+drag pans; wheel zooms." }),
    el("button", { text: "Close", onclick: () => dialog.close() }),
  );
  dialog.showModal();
}

/**
 * @param {HTMLDialogElement} dialog
 * @param {import("../store.js").Store} store
 * @param {import("../types.js").Annotation} a the conflicted record
 * @param {() => void} save flushes autosave after a resolution
 */
export function showConflict(dialog, store, a, save) {
  const current = a.conflict;
  if (!current) return;
  const rows = conflictRows(a, current);
  const who = current.updated_at ? `, saved ${new Date(current.updated_at).toLocaleTimeString()}` : "";
  const close = () => {
    dialog.close();
    store.emit("annotations");
    store.emit("selection");
    save();
  };
  dialog.replaceChildren(
    el("h2", { text: "This annotation was changed by someone else" }),
    el("p", { text: `Your edit was based on version ${a.version}; the server has version ${current.version}${who}.` }),
    el(
      "table",
      { class: "diff", "data-testid": "conflict-diff" },
      el("tr", {}, el("th", { text: "field" }), el("th", { text: "yours" }), el("th", { text: "theirs" })),
      ...rows.map((r) => el("tr", {}, el("td", { text: r.field }), el("td", { class: "mine", text: r.mine }), el("td", { class: "theirs", text: r.theirs }))),
    ),
    el(
      "div",
      { class: "actions" },
      el("button", { "data-action": "reload", text: "Reload theirs", onclick: () => { resolveReload(a, current); close(); } }),
      el("button", { "data-action": "overwrite", class: "danger", text: "Overwrite with mine", onclick: () => { resolveOverwrite(a, current); close(); } }),
    ),
  );
  if (!dialog.open) dialog.showModal();
}
