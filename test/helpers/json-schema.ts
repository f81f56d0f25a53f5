/**
 * A small JSON Schema (2020-12) validator for the keywords ctlab's schemas
 * use: type, enum, properties, required, additionalProperties,
 * propertyNames, items, oneOf, $ref to #/$defs, minimum, maximum, minLength.
 * An unknown keyword fails loudly, so a schema cannot silently use one this
 * validator would ignore.
 */
type Schema = Record<string, unknown>;

const KNOWN = new Set([
  "$schema",
  "$id",
  "title",
  "description",
  "$defs",
  "type",
  "enum",
  "properties",
  "required",
  "additionalProperties",
  "propertyNames",
  "items",
  "oneOf",
  "$ref",
  "minimum",
  "maximum",
  "minLength",
]);

function typeOf(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "array";
  if (typeof v === "number") return Number.isInteger(v) ? "integer" : "number";
  return typeof v;
}

/** The errors of `value` against `schema` (empty when valid), each "path: problem". */
export function validate(schema: Schema, value: unknown, root: Schema = schema, path = "$"): string[] {
  for (const k of Object.keys(schema)) if (!KNOWN.has(k)) throw new Error(`Schema keyword "${k}" at ${path} is not supported by the test validator`);
  const errs: string[] = [];
  if (typeof schema.$ref === "string") {
    const m = /^#\/\$defs\/(.+)$/.exec(schema.$ref);
    const target = m ? (root.$defs as Record<string, Schema> | undefined)?.[m[1] as string] : undefined;
    if (target === undefined) throw new Error(`Unresolvable $ref "${schema.$ref}"`);
    errs.push(...validate(target, value, root, path));
  }
  if (schema.type !== undefined) {
    const types = Array.isArray(schema.type) ? (schema.type as string[]) : [schema.type as string];
    const t = typeOf(value);
    if (!types.some((x) => x === t || (x === "number" && t === "integer"))) return [...errs, `${path}: expected ${types.join(" or ")}, got ${t}`];
  }
  if (Array.isArray(schema.enum) && !schema.enum.some((e) => e === value))
    errs.push(`${path}: ${JSON.stringify(value)} is not one of ${JSON.stringify(schema.enum)}`);
  if (typeof value === "number") {
    if (typeof schema.minimum === "number" && value < schema.minimum) errs.push(`${path}: ${value} < ${schema.minimum}`);
    if (typeof schema.maximum === "number" && value > schema.maximum) errs.push(`${path}: ${value} > ${schema.maximum}`);
  }
  if (typeof value === "string" && typeof schema.minLength === "number" && value.length < schema.minLength)
    errs.push(`${path}: string shorter than ${schema.minLength}`);
  if (Array.isArray(schema.oneOf)) {
    const ok = (schema.oneOf as Schema[]).filter((s) => validate(s, value, root, path).length === 0).length;
    if (ok !== 1) errs.push(`${path}: matches ${ok} of the oneOf alternatives, not exactly 1`);
  }
  if (Array.isArray(value) && schema.items !== undefined) value.forEach((v, i) => errs.push(...validate(schema.items as Schema, v, root, `${path}[${i}]`)));
  if (typeOf(value) === "object") {
    const o = value as Record<string, unknown>;
    const props = (schema.properties ?? {}) as Record<string, Schema>;
    for (const r of (schema.required ?? []) as string[]) if (!(r in o)) errs.push(`${path}: missing "${r}"`);
    for (const [k, v] of Object.entries(o)) {
      if (schema.propertyNames !== undefined) errs.push(...validate(schema.propertyNames as Schema, k, root, `${path} key ${JSON.stringify(k)}`));
      const p = props[k];
      if (p !== undefined) errs.push(...validate(p, v, root, `${path}.${k}`));
      else if (schema.additionalProperties === false) errs.push(`${path}: unexpected property "${k}"`);
      else if (typeof schema.additionalProperties === "object") errs.push(...validate(schema.additionalProperties as Schema, v, root, `${path}.${k}`));
    }
  }
  return errs;
}
