import type { PrismaTx } from '../db/client.js';
import type { Plan } from '../generated/prisma/client.js';

export type PlanQuotas = Record<Plan, number>;

/** First day of the UTC month: the key of a quota period. */
export function quotaPeriodOf(date = new Date()): Date {
  return new Date(Date.UTC(date.getUTCFullYear(), date.getUTCMonth(), 1));
}

/** Releases a hold and charges what was used, which may be more than was held. */
export async function chargeQuotaTokens(tx: PrismaTx, userId: string, period: Date, released: number, used: number): Promise<void> {
  await tx.$executeRaw`
    UPDATE "QuotaPeriod"
    SET "reservedTokens" = GREATEST("reservedTokens" - ${released}, 0),
        "usedTokens" = GREATEST("usedTokens" + ${used}, 0), "updatedAt" = now()
    WHERE "userId" = ${userId}::uuid AND "period" = ${period}::date`;
}
