import type { PrismaTx } from '../db/client.js';
import type { MeteredUsage } from './prices.js';

/** UTC calendar day of an instant, as the DATE the roll-ups are keyed by. */
export function utcDay(date: Date): Date {
  return new Date(Date.UTC(date.getUTCFullYear(), date.getUTCMonth(), date.getUTCDate()));
}

/**
 * Adds usage to the daily roll-up of a user and model. A correction adds the difference (which
 * may be negative) and no request.
 */
export async function addToDailyRollup(
  tx: PrismaTx,
  row: { userId: string; day: Date; model: string; usage: MeteredUsage; costMicros: bigint; requests: number },
): Promise<void> {
  // The database function that settlement uses too (migration settle_in_one_statement).
  await tx.$executeRaw`
    SELECT "usage_add_to_daily"(${row.userId}::uuid, ${row.day}::date, ${row.model}, ${JSON.stringify(row.usage)}::jsonb,
                                ${row.costMicros}, ${row.requests}::int)`;
}
