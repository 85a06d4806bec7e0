// Does a record of a known type have valid fields? The same answer as the Python decoder.
//
// The server passes on a stored record of a known type whose fields do not validate (written
// by an older version, or by hand) as it is; Python folds it as an `OpaqueEvent`, which only
// advances `seq`. The web fold must do the same, so it checks each record's event fields
// against the JSON Schema generated from the Python models (the few keywords msgspec emits).
import { RECORD_SCHEMA } from "./generated/schema.js";

interface Schema {
  type?: "object" | "array" | "string" | "integer" | "number" | "boolean" | "null";
  properties?: Record<string, Schema>;
  required?: string[];
  items?: Schema;
  anyOf?: Schema[];
  enum?: unknown[];
  const?: unknown;
  $ref?: string;
  minimum?: number;
  maximum?: number;
  minLength?: number;
  maxLength?: number;
}

/** The envelope is checked by whoever parsed the record; the event's decoder ignores it. */
const ENVELOPE = new Set(["v", "session", "seq", "ts"]);

const DEFS = RECORD_SCHEMA.$defs as Record<string, Schema>;

/** The schema of each record type, by its `type` tag. */
const BY_TYPE: ReadonlyMap<string, Schema> = new Map(
  Object.values(DEFS)
    .filter((def) => def.properties?.type?.enum?.length === 1)
    .map((def) => [def.properties!.type!.enum![0] as string, def]),
);

/** Whether a record of a known type has valid event fields (true for an unknown type: it is not checked). */
export function validEvent(record: { type: string } & Record<string, unknown>): boolean {
  const schema = BY_TYPE.get(record.type);
  if (!schema) return true;
  for (const name of schema.required ?? []) {
    if (!ENVELOPE.has(name) && !(name in record)) return false;
  }
  for (const [name, field] of Object.entries(schema.properties ?? {})) {
    if (ENVELOPE.has(name) || !(name in record)) continue;
    if (!matches(record[name], field)) return false;
  }
  return true;
}

function matches(value: unknown, schema: Schema): boolean {
  if (schema.$ref !== undefined) return matches(value, DEFS[schema.$ref.replace("#/$defs/", "")]);
  if (schema.anyOf && !schema.anyOf.some((option) => matches(value, option))) return false;
  if (schema.enum && !schema.enum.includes(value)) return false;
  if ("const" in schema && value !== schema.const) return false;
  switch (schema.type) {
    case undefined:
      return true;
    case "null":
      return value === null;
    case "boolean":
      return typeof value === "boolean";
    case "string": {
      if (typeof value !== "string") return false;
      if (schema.minLength === undefined && schema.maxLength === undefined) return true;
      const length = [...value].length; // code points, as Python counts them
      return length >= (schema.minLength ?? 0) && length <= (schema.maxLength ?? Infinity);
    }
    case "integer":
    case "number":
      return (
        typeof value === "number" &&
        (schema.type === "number" ? Number.isFinite(value) : Number.isInteger(value)) &&
        value >= (schema.minimum ?? -Infinity) &&
        value <= (schema.maximum ?? Infinity)
      );
    case "array":
      return Array.isArray(value) && (!schema.items || value.every((item) => matches(item, schema.items!)));
    case "object":
      if (typeof value !== "object" || value === null || Array.isArray(value)) return false;
      for (const name of schema.required ?? []) if (!(name in value)) return false;
      for (const [name, field] of Object.entries(schema.properties ?? {})) {
        if (name in value && !matches((value as Record<string, unknown>)[name], field)) return false;
      }
      return true;
  }
}
