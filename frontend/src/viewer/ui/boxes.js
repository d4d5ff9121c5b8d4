// @ts-check
/** Side panel: the image's boxes (label, provenance, author) and pending suggestions with their scores. */

import { el, renderKeepingFocus } from "./dom.js";
import { labelColour } from "../render.js";
import { updateBox } from "../commands/updateBox.js";
import { deleteBox } from "../commands/deleteBox.js";
import { acceptSuggestion } from "../commands/acceptSuggestion.js";
import { rejectSuggestion } from "../commands/rejectSuggestion.js";
import { formatScore } from "../score.js";

const ORIGIN = { manual: "manual", "suggestion-accepted": "accepted", "suggestion-edited": "edited", imported: "imported" };

/**
 * @param {HTMLElement} root
 * @param {import("../tools/tool.js").ToolContext} ctx
 */
export function mountBoxes(root, ctx) {
  const { store, history } = ctx;
  const labels = /** @type {string[]} */ (store.config.schema?.box_labels ?? []);

  const canEdit = store.config.can_edit !== false;

  function render() {
    const s = store.state;
    const sugg = store.pendingSuggestions();
    const resolved = s.suggestions.filter((x) => x.kind === "box" && x.state !== "pending");
    const boxes = store.boxes();
    root.replaceChildren(
      el("h2", {}, `Suggestions `, el("span", { class: "count", text: String(sugg.length) })),
      sugg.length
        ? el(
            "ul",
            { class: "list", "data-testid": "suggestions" },
            ...sugg.map((sg) =>
              el(
                "li",
                {
                  class: `row suggestion${s.selected === `s${sg.id}` ? " selected" : ""}`,
                  "data-suggestion": sg.id,
                  onclick: () => {
                    store.state.selected = `s${sg.id}`;
                    store.emit("selection");
                  },
                },
                el("span", { class: "swatch dashed" }),
                el("span", { class: "name", text: sg.label || "suggestion" }),
                el("span", { class: "score", text: formatScore(sg) }),
                canEdit ? el("button", { class: "mini ok", title: "Accept (A)", text: "✓", onclick: (/** @type {Event} */ e) => { e.stopPropagation(); history.run(acceptSuggestion(store, sg.id)); } }) : null,
                canEdit ? el("button", { class: "mini no", title: "Reject (R)", text: "✕", onclick: (/** @type {Event} */ e) => { e.stopPropagation(); history.run(rejectSuggestion(store, sg.id)); } }) : null,
              ),
            ),
          )
        : el("p", { class: "muted", text: resolved.length ? `All ${resolved.length} resolved.` : "None for this image." }),
      el("h2", {}, `Boxes `, el("span", { class: "count", text: String(boxes.length) })),
      boxes.length
        ? el(
            "ul",
            { class: "list", "data-testid": "boxes" },
            ...boxes.map((a) => {
              const mine = store.mayChange(a);
              const select = /** @type {HTMLSelectElement} */ (
                el(
                  "select",
                  {
                    class: "label-select",
                    title: mine ? "Label (1…9)" : `${a.author_name || "Someone else"}'s box: only its author or a reviewer changes it`,
                    disabled: !mine,
                    "data-key": `label:${a.lid}`,
                    onchange: () => history.run(updateBox(store, a.lid, { label: select.value })),
                    onclick: (/** @type {Event} */ e) => e.stopPropagation(),
                  },
                  ...labels.map((l) => el("option", { value: l, text: l, selected: l === a.label })),
                )
              );
              return el(
                "li",
                {
                  class: `row${s.selected === a.lid ? " selected" : ""}${a.conflict ? " conflict" : ""}${a.error ? " refused" : ""}`,
                  "data-lid": a.lid,
                  "data-id": a.id ?? "",
                  title: a.error || "",
                  onclick: () => {
                    store.state.selected = a.lid;
                    store.emit("selection");
                  },
                },
                el("span", { class: "swatch", style: `background:${labelColour(labels, a.label)}` }),
                select,
                el("span", { class: `origin ${a.origin}`, text: ORIGIN[/** @type {keyof ORIGIN} */ (a.origin)] ?? a.origin }),
                el("span", { class: "author", text: a.author_name || "" }),
                mine ? el("button", { class: "mini no", title: "Delete (Del)", text: "✕", onclick: (/** @type {Event} */ e) => { e.stopPropagation(); history.run(deleteBox(store, a.lid)); } }) : null,
              );
            }),
          )
        : el("p", { class: "muted", text: canEdit ? "Drag on the image to draw a box." : "No boxes." }),
    );
  }

  for (const t of ["annotations", "suggestions", "selection"]) store.on(t, () => renderKeepingFocus(root, render));
  render();
}
