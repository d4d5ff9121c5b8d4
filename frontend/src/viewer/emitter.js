// @ts-check
/**
 * A tiny event emitter: the viewer's parts talk only through the store's emitter, so a tool
 * never needs to know who redraws or saves after it changes something.
 */

/** @typedef {(payload?: any) => void} Listener */

export class Emitter {
  constructor() {
    /** @type {Map<string, Set<Listener>>} */
    this.listeners = new Map();
  }

  /**
   * Subscribes to a topic ("*" receives every topic).
   * @param {string} topic
   * @param {Listener} fn
   * @returns {() => void} unsubscribe
   */
  on(topic, fn) {
    let set = this.listeners.get(topic);
    if (!set) {
      set = new Set();
      this.listeners.set(topic, set);
    }
    set.add(fn);
    return () => set.delete(fn);
  }

  /**
   * @param {string} topic
   * @param {any} [payload]
   */
  emit(topic, payload) {
    for (const fn of this.listeners.get(topic) ?? []) fn(payload);
    if (topic !== "*") for (const fn of this.listeners.get("*") ?? []) fn({ topic, payload });
  }
}
