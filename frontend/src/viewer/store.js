// @ts-check
/**
 * The one store of the viewer: plain state plus an emitter. Every part reads `store.state` and
 * announces what it changed with `store.emit(topic)`; the renderer, panels and autosave listen.
 *
 * Topics: "view", "wl", "image", "annotations", "suggestions", "selection", "tool", "sync",
 * "notice", "overlay", "measure", "pointer".
 */

import { Emitter } from "./emitter.js";

/** @typedef {import("./types.js").Annotation} Annotation */
/** @typedef {import("./types.js").Suggestion} Suggestion */

let lidCounter = 0;

/** @returns {string} a page-unique local id for a new annotation */
export function newLid() {
  lidCounter += 1;
  return `l${lidCounter}`;
}

/**
 * A fresh idempotency key for a record the server has not created yet: a create sent twice with
 * it (lost reply, timer and `online` retry, reload from the journal) still makes one row.
 * @returns {string} a random (v4) UUID
 */
export function newClientUid() {
  if (typeof crypto.randomUUID === "function") return crypto.randomUUID();
  // randomUUID exists only in secure contexts (HTTPS, localhost); getRandomValues everywhere.
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/**
 * @param {Partial<Annotation>} fields
 * @returns {Annotation}
 */
export function makeAnnotation(fields) {
  return {
    lid: newLid(),
    client_uid: newClientUid(),
    id: null,
    kind: "box",
    label: "",
    head: "",
    value: null,
    x0: null,
    y0: null,
    x1: null,
    y1: null,
    suggestion: null,
    origin: "manual",
    author: null,
    author_name: "",
    version: 0,
    deleted: false,
    saved: null,
    conflict: null,
    error: "",
    ...fields,
  };
}

/**
 * A record as the server sent it → a local annotation that is in sync.
 * @param {any} row
 * @returns {Annotation}
 */
export function fromServer(row) {
  const a = makeAnnotation({
    id: row.id,
    kind: row.kind,
    label: row.label ?? "",
    head: row.head ?? "",
    value: row.value ?? null,
    x0: row.x0,
    y0: row.y0,
    x1: row.x1,
    y1: row.y1,
    suggestion: row.suggestion ?? null,
    origin: row.origin,
    author: row.author ?? null,
    author_name: row.author_name ?? "",
    version: row.version,
    client_uid: row.client_uid ?? null,
  });
  a.saved = snapshot(a);
  return a;
}

/**
 * The saved-comparable fields of an annotation.
 * @param {Annotation} a
 * @returns {import("./types.js").Saved}
 */
export function snapshot(a) {
  return { label: a.label, x0: a.x0, y0: a.y0, x1: a.x1, y1: a.y1, value: a.value, deleted: a.deleted };
}

/**
 * A server record in the shape of `snapshot` (what the server holds of it).
 * @param {any} row
 * @returns {import("./types.js").Saved}
 */
export function serverSnapshot(row) {
  return {
    label: row.label ?? "",
    x0: row.x0,
    y0: row.y0,
    x1: row.x1,
    y1: row.y1,
    value: row.value ?? null,
    deleted: Boolean(row.is_deleted ?? row.deleted ?? false),
  };
}

/**
 * @param {Annotation} a
 * @returns {boolean} whether the server does not yet have this annotation's local state
 */
export function isDirty(a) {
  if (a.saved === null) return !a.deleted;
  const s = snapshot(a);
  return JSON.stringify(s) !== JSON.stringify(a.saved);
}

/**
 * @param {any} row
 * @returns {Suggestion}
 */
export function suggestionFromServer(row) {
  return { ...row, state: row.state, savedState: row.state };
}

export class Store extends Emitter {
  /** @param {any} config the page's configuration (project, image, schema, user...) */
  constructor(config) {
    super();
    this.config = config;
    this.state = {
      /** @type {import("./types.js").View} */
      view: { zoom: 1, panX: 0, panY: 0, rotation: 0, flipH: false, flipV: false, vw: 1, vh: 1, iw: 1, ih: 1 },
      /** @type {import("./types.js").WindowLevel} */
      wl: { center: 32768, width: 65536, invert: false },
      /** @type {{width: number, height: number, data: Uint16Array, min: number, max: number} | null} */
      image: null,
      /** @type {Annotation[]} */
      annotations: [],
      /** @type {Suggestion[]} */
      suggestions: [],
      /** @type {string|null} lid of an annotation, or "s<id>" of a suggestion */
      selected: null,
      tool: "box",
      /** @type {{visible: boolean, opacity: number, available: boolean}} */
      overlay: { visible: false, opacity: 0.45, available: false },
      /** @type {{a: {x: number, y: number}, b: {x: number, y: number}} | null} */
      measure: null,
      /** @type {{x: number, y: number, value: number|null} | null} */
      pointer: null,
      /** @type {{status: "saved"|"saving"|"offline"|"error"|"conflict", pending: number, message: string}} */
      sync: { status: "saved", pending: 0, message: "" },
      /** @type {import("./types.js").Box & {label?: string} | null} box being drawn (preview) */
      draft: null,
      currentLabel: config?.schema?.box_labels?.[0] ?? "",
      /** true while a window/level drag is in progress (the renderer trades detail for speed) */
      interacting: false,
    };
  }

  /** @returns {Annotation[]} live (not deleted) box annotations */
  boxes() {
    return this.state.annotations.filter((a) => a.kind === "box" && !a.deleted);
  }

  /** @returns {Suggestion[]} box suggestions still waiting for a decision */
  pendingSuggestions() {
    return this.state.suggestions.filter((s) => s.kind === "box" && s.state === "pending");
  }

  /**
   * @param {string} lid
   * @returns {Annotation|undefined}
   */
  annotation(lid) {
    return this.state.annotations.find((a) => a.lid === lid);
  }

  /**
   * @param {number} id
   * @returns {Suggestion|undefined}
   */
  suggestion(id) {
    return this.state.suggestions.find((s) => s.id === id);
  }

  /**
   * Whether this user may change `a`: annotators change only their own records, reviewers and
   * leads anyone's, viewers nothing (the server enforces the same; this keeps the page from
   * offering what it would refuse).
   * @param {Annotation} a
   * @returns {boolean}
   */
  mayChange(a) {
    const c = this.config ?? {};
    if (c.can_edit === false) return false;
    if (c.can_edit_others !== false) return true;
    return a.id === null || a.author === (c.user?.id ?? null);
  }

  /**
   * @param {string} head
   * @returns {Annotation|undefined} my live answer to a head
   */
  headAnswer(head) {
    const me = this.config?.user?.id ?? null;
    const mine = this.state.annotations.filter((a) => a.kind === "head" && a.head === head && a.author === me);
    // A live answer wins over one deleted here and kept for undo (another tab may have answered since).
    return mine.find((a) => !a.deleted) ?? mine[0];
  }
}
