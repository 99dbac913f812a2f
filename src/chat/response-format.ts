import { Ajv } from 'ajv';
import { badInput } from '../errors.js';
import type { ResponseFormat } from '../providers/provider.js';

/** The largest JSON Schema a reply may be asked to fit, serialized. */
export const MAX_RESPONSE_SCHEMA_BYTES = 16 * 1024;

export interface ResponseFormatInput {
  type: 'TEXT' | 'JSON_OBJECT' | 'JSON_SCHEMA';
  name?: string | null;
  schema?: unknown;
  strict?: boolean | null;
}

// Compiles schemas only to tell a valid one from an invalid one; nothing is validated against them here.
const ajv = new Ajv({ strict: false, validateSchema: true, allErrors: false });

/**
 * Checks a response format before any call: a JSON_SCHEMA needs a name (what providers show the
 * model) and an object that is a valid JSON Schema, of bounded size.
 */
export function checkResponseFormat(input: ResponseFormatInput | null | undefined): ResponseFormat | undefined {
  if (!input || input.type === 'TEXT') return undefined;
  if (input.type === 'JSON_OBJECT') return { type: 'json_object' };
  const name = input.name ?? '';
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(name)) {
    throw badInput('responseFormat.name must be 1 to 64 letters, digits, _ or -', 'responseFormat.name');
  }
  const schema = input.schema;
  if (typeof schema !== 'object' || schema === null || Array.isArray(schema)) {
    throw badInput('responseFormat.schema must be a JSON Schema object', 'responseFormat.schema');
  }
  if (Buffer.byteLength(JSON.stringify(schema)) > MAX_RESPONSE_SCHEMA_BYTES) {
    throw badInput(`responseFormat.schema must be at most ${MAX_RESPONSE_SCHEMA_BYTES} bytes`, 'responseFormat.schema');
  }
  const invalid = invalidSchemaReason(schema);
  if (invalid) throw badInput(`responseFormat.schema is not a valid JSON Schema: ${invalid}`, 'responseFormat.schema');
  return { type: 'json_schema', name, schema: schema as Record<string, unknown>, strict: input.strict ?? false };
}

/**
 * Why a JSON Schema is not valid (Ajv's first complaint), or undefined when it is. The compiled
 * schema is dropped again: Ajv would otherwise keep every client's schema, and refuse a second
 * one with the same `$id`.
 */
export function invalidSchemaReason(schema: object): string | undefined {
  try {
    ajv.compile(schema);
    return undefined;
  } catch (error) {
    return error instanceof Error ? error.message.slice(0, 300) : 'it does not compile';
  } finally {
    ajv.removeSchema(schema);
  }
}
