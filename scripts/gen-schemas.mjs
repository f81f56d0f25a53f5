#!/usr/bin/env node
// Writes schema/*.schema.json from the zod definitions (run after `npm run build`);
// test/sim/schema.test.ts fails when the shipped files are stale.
import { writeFileSync } from "node:fs";
import { scenarioJsonSchema } from "../dist/src/sim/scenario.js";
import { simulateJsonSchema } from "../dist/src/sim/output.js";

writeFileSync("schema/scenario.schema.json", JSON.stringify(scenarioJsonSchema(), null, 2) + "\n");
writeFileSync("schema/simulate.schema.json", JSON.stringify(simulateJsonSchema(), null, 2) + "\n");
