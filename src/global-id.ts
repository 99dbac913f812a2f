import { badInput } from './errors.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
// Matches no row; used when a lookup must find nothing (anonymous viewer, foreign object).
export const NO_ROW_ID = '00000000-0000-0000-0000-000000000000';

/**
 * Relay global ids are base64("Type:uuid"). Anything else is bad input; checking the uuid shape
 * here keeps malformed ids from ever reaching SQL (where they would be a database error).
 */
export function decodeGlobalId(globalId: string): { typename: string; id: string } {
  const decoded = Buffer.from(globalId, 'base64').toString('utf8');
  const separator = decoded.indexOf(':');
  const typename = decoded.slice(0, separator);
  const id = decoded.slice(separator + 1);
  if (separator < 1 || !UUID.test(id) || globalId.length > 200) throw badInput('Invalid ID', 'id');
  return { typename, id };
}

export function encodeGlobalId(typename: string, id: string): string {
  return Buffer.from(`${typename}:${id}`).toString('base64');
}
