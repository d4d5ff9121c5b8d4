// @ts-check
/**
 * Heads panel: one control per head of the project's schema, each with "unknown". A model's head
 * prediction is shown with its probabilities and pre-selects nothing on the server: it becomes the
 * user's answer only when confirmed (✓), and that answer keeps the link to the prediction.
 */

import { el, renderKeepingFocus } from "./dom.js";
import { setHead } from "../commands/setHead.js";
import { clearHead } from "../commands/clearHead.js";

const UNKNOWN = "unknown";

/**
 * @param {HTMLElement} root
 * @param {import("../tools/tool.js").ToolContext} ctx
 */
export function mountHeads(root, ctx) {
  const { store, history } = ctx;
  /** @type {{name: string, kind: string, classes: string[]}[]} */
  const heads = store.config.schema?.heads ?? [];
  const canEdit = store.config.can_edit !== false;
  const me = store.config.user?.id ?? null;

  /**
   * The model's prediction for a head: the pending one, else the latest resolved (a reader's
   * answer resolves it; its probabilities stay worth seeing).
   * @param {string} head
   */
  function prediction(head) {
    const all = store.state.suggestions.filter((s) => s.kind === "head" && s.head === head);
    return all.find((s) => s.state === "pending") ?? all.at(-1);
  }

  function render() {
    root.replaceChildren(
      el("h2", { text: "Findings" }),
      ...heads.map((h) => {
        const ans = store.headAnswer(h.name);
        const answered = ans && !ans.deleted ? ans.value : null;
        const pred = prediction(h.name);
        // Other readers' answers: each reader answers for themselves; a reviewer compares.
        const others = store.state.annotations
          .filter((a) => a.kind === "head" && a.head === h.name && !a.deleted && a.author !== me)
          .map((a) => `${a.author_name || "someone"}: ${Array.isArray(a.value) ? a.value.join(", ") || "none" : a.value}`);
        const probs = /** @type {Record<string, number>} */ (pred?.value?.probabilities ?? {});
        // Only a pending prediction pre-selects and can be confirmed.
        const predicted = pred?.state === "pending" ? (pred?.value?.answer ?? null) : null;
        const probText = Object.entries(probs)
          .sort((a, b) => b[1] - a[1])
          .slice(0, 3)
          .map(([c, p]) => `${c} ${(p * 100).toFixed(0)}%`)
          .join(" · ");
        /** @type {HTMLElement} */
        let control;
        if (h.kind === "multilabel") {
          const current = Array.isArray(answered) ? answered : [];
          const predictedSet = Array.isArray(predicted) ? predicted : [];
          control = el(
            "div",
            { class: "checks", role: "group", "aria-label": h.name.replaceAll("_", " ") },
            ...h.classes.map((cls) => {
              const box = /** @type {HTMLInputElement} */ (
                el("input", { type: "checkbox", value: cls, checked: current.includes(cls), disabled: !canEdit, "data-key": `head:${h.name}:${cls}` })
              );
              box.addEventListener("change", () => {
                const next = h.classes.filter((c) => (c === cls ? box.checked : current.includes(c)));
                history.run(setHead(store, h.name, next));
              });
              return el("label", { class: answered === null && predictedSet.includes(cls) ? "suggested" : "" }, box, ` ${cls}`);
            }),
            el("button", {
              class: `mini${answered === UNKNOWN ? " on" : ""}`,
              text: UNKNOWN,
              disabled: !canEdit,
              "data-key": `head:${h.name}:${UNKNOWN}`,
              onclick: () => history.run(setHead(store, h.name, UNKNOWN)),
            }),
          );
        } else {
          const sel = /** @type {HTMLSelectElement} */ (
            el(
              "select",
              {
                "data-head": h.name,
                "data-key": `head:${h.name}`,
                "aria-label": h.name.replaceAll("_", " "),
                disabled: !canEdit,
                class: answered === null && predicted ? "suggested" : "",
              },
              el("option", { value: "", text: "— unanswered —", selected: answered === null && !predicted }),
              ...h.classes.map((cls) =>
                el("option", {
                  value: cls,
                  text: answered === null && cls === predicted ? `${cls} (suggested)` : cls,
                  selected: answered !== null ? answered === cls : cls === predicted,
                }),
              ),
              el("option", { value: UNKNOWN, text: UNKNOWN, selected: answered === UNKNOWN }),
            )
          );
          sel.addEventListener("change", () => {
            if (sel.value) history.run(setHead(store, h.name, sel.value));
            else if (answered !== null) history.run(clearHead(store, h.name));
          });
          control = sel;
        }
        const confirm =
          canEdit && pred && predicted !== null && answered === null
            ? el("button", {
                class: "mini ok",
                title: "Confirm the model's answer as yours",
                "data-confirm": h.name,
                text: "✓ confirm",
                onclick: () => history.run(setHead(store, h.name, predicted, pred.id)),
              })
            : null;
        return el(
          "div",
          { class: `head${answered !== null ? " answered" : ""}`, "data-head-row": h.name },
          el("div", { class: "head-name", text: h.name.replaceAll("_", " ") }),
          control,
          confirm,
          pred
            ? el("div", {
                class: "probs",
                title: pred.state === "pending" ? "Model prediction (not saved until you confirm)" : `Model prediction (${pred.state})`,
                text: `model: ${probText}`,
              })
            : null,
          others.length ? el("div", { class: "others", "data-others": h.name, title: "Other readers' answers", text: others.join(" · ") }) : null,
        );
      }),
    );
  }

  for (const t of ["annotations", "suggestions"]) store.on(t, () => renderKeepingFocus(root, render));
  render();
}
