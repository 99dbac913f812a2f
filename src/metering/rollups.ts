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
  const { usage } = row;
  const total = usage.promptTokens + usage.completionTokens;
  await tx.$executeRaw`
    INSERT INTO "UsageDaily" ("userId", "day", "model", "promptTokens", "cachedTokens", "completionTokens", "reasoningTokens",
                              "totalTokens", "costMicros", "requests")
    VALUES (${row.userId}::uuid, ${row.day}::date, ${row.model}, ${usage.promptTokens}, ${usage.cachedTokens},
            ${usage.completionTokens}, ${usage.reasoningTokens}, ${total}, ${row.costMicros}, ${row.requests})
    ON CONFLICT ("userId", "day", "model") DO UPDATE SET
      "promptTokens" = "UsageDaily"."promptTokens" + EXCLUDED."promptTokens",
      "cachedTokens" = "UsageDaily"."cachedTokens" + EXCLUDED."cachedTokens",
      "completionTokens" = "UsageDaily"."completionTokens" + EXCLUDED."completionTokens",
      "reasoningTokens" = "UsageDaily"."reasoningTokens" + EXCLUDED."reasoningTokens",
      "totalTokens" = "UsageDaily"."totalTokens" + EXCLUDED."totalTokens",
      "costMicros" = "UsageDaily"."costMicros" + EXCLUDED."costMicros",
      "requests" = "UsageDaily"."requests" + EXCLUDED."requests"`;
}
