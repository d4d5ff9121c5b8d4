// @ts-check
/**
 * How a suggestion's score reads to a radiologist. Error-map boxes score by how unusual the
 * region is (a robust z-score over the body, unbounded), not by a probability, so they must not
 * be shown as a percentage; head predictions are probabilities.
 */

/**
 * @param {{score: number, source?: string}} sg
 * @returns {string}
 */
export function formatScore(sg) {
  if (sg.source === "errormap" || sg.score > 1) return `z ${sg.score.toFixed(1)}`;
  return `${(sg.score * 100).toFixed(0)}%`;
}
