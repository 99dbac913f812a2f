import type { GraphQLField } from 'graphql';
import { badInput } from '../../errors.js';

/** Largest page of any connection: a larger first/last is clamped to it. */
export const MAX_PAGE_SIZE = 100;
/** Page size when neither first nor last is given (Pothos' default). */
export const DEFAULT_PAGE_SIZE = 20;

type FieldArgs = Pick<GraphQLField<unknown, unknown>, 'args'>;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * The cost of one field: 1, and its selection counted once per item it can return: a
 * connection's page size (first/last, or the default page when neither is given), the number of
 * ids asked for. Computed before execution with the request's variables, so `first: $n` costs as
 * much as `first: 100`. Paging arguments are checked here too, so that a bad one refuses the
 * request instead of nulling the parent object of a non-null connection.
 */
export function fieldCost(args: Record<string, unknown>, field: FieldArgs): { field: number; multiplier: number } {
  if (isConnection(field)) {
    for (const name of ['first', 'last'] as const) checkPageSize(args[name], name);
    for (const name of ['after', 'before'] as const) checkCursor(args[name], name);
    // Larger pages are clamped to MAX_PAGE_SIZE by the connection, so they cost no more.
    const size = Math.min((args.first ?? args.last ?? DEFAULT_PAGE_SIZE) as number, MAX_PAGE_SIZE);
    return { field: 1, multiplier: size };
  }
  if (Array.isArray(args.ids)) return { field: 1, multiplier: args.ids.length };
  return { field: 1, multiplier: 1 };
}

// A connection is a field that takes a page size; left out, it still returns a page.
const isConnection = (field: FieldArgs) =>
  field.args.some((arg) => arg.name === 'first' || arg.name === 'last');

function checkPageSize(value: unknown, name: string): void {
  if (value == null) return;
  if (typeof value !== 'number' || value < 0) throw badInput(`${name} must not be negative`, name);
}

// Cursors are Pothos' base64 of `GPC:S:<uuid>`; checking the shape keeps garbage away from SQL.
function checkCursor(value: unknown, name: string): void {
  if (value == null) return;
  const decoded = typeof value === 'string' && value.length <= 100 ? Buffer.from(value, 'base64').toString('utf8') : '';
  if (!decoded.startsWith('GPC:S:') || !UUID.test(decoded.slice(6))) throw badInput(`${name} is not a valid cursor`, name);
}
