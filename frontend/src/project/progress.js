// @ts-check
/**
 * What the project page shows for a `job.progress` event: a title, a fraction and a line of text
 * per running job (analysis, training round, export, pretraining), and which events make the
 * page's figures stale.
 */

/** @typedef {{key: string, title: string, done: number, total: number, text: string, finished: boolean, state: string}} JobView */

/**
 * @param {{job?: unknown, done?: unknown, total?: unknown, state?: unknown}} payload
 * @returns {JobView|null} null for a payload without a job name
 */
export function describeJob(payload) {
  const key = typeof payload.job === "string" ? payload.job : "";
  if (!key) return null;
  const done = Math.max(0, Number(payload.done) || 0);
  const total = Math.max(0, Number(payload.total) || 0);
  const failed = payload.state === "failed";
  const refused = payload.state === "refused"; // could not run (e.g. too few labels): the page says why
  const [kind, ...rest] = key.split(":");
  const name = rest.join(":");
  /** @type {Record<string, [string, string]>} */
  const known = {
    analysis: ["Analysis", "images analysed"],
    retrain: ["Training round", "steps"],
    ranking: ["Ordering the queue", "steps"],
    comparison: ["Comparing rankings", "replays"],
    export: [`Export ${name}`, "files"],
    pretrain: [`Pretraining ${name}`, "epochs"],
  };
  const [title, unit] = known[kind] ?? [key, ""];
  const count = total ? `${done} / ${total}${unit ? ` ${unit}` : ""}` : "starting";
  return {
    key,
    title,
    done,
    total,
    text: failed ? "failed" : refused ? "not run: see its section" : total && done >= total ? `done (${count})` : count,
    finished: failed || refused || (total > 0 && done >= total),
    state: failed ? "failed" : refused ? "refused" : "ok",
  };
}

/** Events after which the page's counts, curve or tables may have changed. */
export const STALE_AFTER = new Set(["queue.updated", "image.ingested", "image.analysed", "image.deleted", "annotation.saved", "suggestion.resolved"]);

/**
 * @param {{type?: unknown, done?: unknown, total?: unknown}} msg
 * @returns {boolean} whether the page should re-read its figures
 */
export function makesStale(msg) {
  if (typeof msg.type !== "string") return false;
  if (msg.type === "job.progress") return describeJob(/** @type {any} */ (msg))?.finished ?? false;
  return STALE_AFTER.has(msg.type);
}
