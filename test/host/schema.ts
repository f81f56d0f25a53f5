/** Validates doctor JSON against the shipped schema (schema/doctor.schema.json). */
import { readFileSync } from "node:fs";
import { Ajv2020 } from "ajv/dist/2020.js";

const ajv = new Ajv2020({ allErrors: true, strict: true, allowUnionTypes: true, validateFormats: false });
const validate = ajv.compile(JSON.parse(readFileSync("schema/doctor.schema.json", "utf8")) as object);

/** Throws with every schema error when `doc` does not match. */
export function assertDoctorSchema(doc: unknown): void {
  if (!validate(doc)) throw new Error(`doctor JSON does not match schema/doctor.schema.json:\n${JSON.stringify(validate.errors, null, 2)}`);
}
