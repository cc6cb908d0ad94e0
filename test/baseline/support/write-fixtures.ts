/**
 * Regenerates test/fixtures/baselines/*.json from the fixture streams, after a deliberate
 * format change:  npx tsx test/baseline/support/write-fixtures.ts
 * The golden-file test then pins the new bytes; review the diff like any format change.
 */
import { writeFileSync } from "node:fs";
import { freezeBaseline, recordBaseline, serialiseBaseline } from "../../../src/core/baseline/index.js";
import { mailRun } from "./observations.js";

const DIR = new URL("../../fixtures/baselines/", import.meta.url);
const v1 = recordBaseline({ server: "postmark", rateTolerance: 2 }, mailRun());
writeFileSync(new URL("postmark-v1.json", DIR), serialiseBaseline(v1));
writeFileSync(new URL("postmark-v1-frozen.json", DIR), serialiseBaseline(freezeBaseline(v1, new Date("2025-03-02T09:00:00.000Z"))));
writeFileSync(new URL("postmark-v2.json", DIR), serialiseBaseline(recordBaseline({ server: "postmark", rateTolerance: 2 }, mailRun({ copies: ["collector.evil.test"] }))));
