// @ts-check
/** A small element builder for the panels (no framework: plain DOM). */

/**
 * @param {string} tag
 * @param {Record<string, any>} [attrs] attributes; `on<event>` keys add listeners, `class`, `text`
 * @param {...(Node|string|null|undefined|false)} children
 * @returns {HTMLElement}
 */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") node.addEventListener(k.slice(2), v);
    else if (k === "text") node.textContent = String(v);
    else if (k === "class") node.className = String(v);
    else if (v === true) node.setAttribute(k, "");
    else node.setAttribute(k, String(v));
  }
  for (const c of children) if (c !== null && c !== undefined && c !== false) node.append(c);
  return node;
}

/**
 * Rebuilds `root` with `render` and gives the focus back to the control that had it, matched by
 * its `data-key`: a dropdown whose change re-renders its panel keeps the keyboard, so the next key
 * typed goes to it, not to the viewer's shortcuts (where "a" would accept a suggestion).
 * @param {HTMLElement} root
 * @param {() => void} render
 */
export function renderKeepingFocus(root, render) {
  const active = typeof document !== "undefined" ? document.activeElement : null;
  const key = active instanceof HTMLElement && root.contains(active) ? active.dataset.key : undefined;
  render();
  if (key === undefined) return;
  const again = [...root.querySelectorAll("[data-key]")].find((n) => n instanceof HTMLElement && n.dataset.key === key);
  if (again instanceof HTMLElement) again.focus({ preventScroll: true });
}
