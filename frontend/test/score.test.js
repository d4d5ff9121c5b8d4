import { test } from "node:test";
import assert from "node:assert/strict";
import { formatScore } from "../src/viewer/score.js";

test("error-map scores read as z-scores, head probabilities as percentages", () => {
  assert.equal(formatScore({ score: 5.58, source: "errormap" }), "z 5.6");
  assert.equal(formatScore({ score: 0.8, source: "errormap" }), "z 0.8");
  assert.equal(formatScore({ score: 0.52, source: "heads" }), "52%");
});
