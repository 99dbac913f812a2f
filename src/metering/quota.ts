import type { PrismaTx } from '../db/client.js';
import type { Plan } from '../generated/prisma/client.js';

export type PlanQuotas = Record<Plan, number>;

/** First day of the UTC month: the key of a quota period. */
export function quotaPeriodOf(date = new Date()): Date {
  return new Date(Date.UTC(date.getUTCFullYear(), date.getUTCMonth(), 1));
}

/**
 * Holds tokens against the monthly quota if they fit; false when they do not. The conditional
 * UPDATE takes the row lock, so of concurrent holds only those that fit succeed.
 */
export async function holdQuotaTokens(tx: PrismaTx, userId: string, period: Date, tokens: number, quota: number): Promise<boolean> {
  await tx.$executeRaw`
    INSERT INTO "QuotaPeriod" ("userId", "period", "usedTokens", "reservedTokens", "updatedAt")
    VALUES (${userId}::uuid, ${period}::date, 0, 0, now())
    ON CONFLICT ("userId", "period") DO NOTHING`;
  const held = await tx.$executeRaw`
    UPDATE "QuotaPeriod"
    SET "reservedTokens" = "reservedTokens" + ${tokens}, "updatedAt" = now()
    WHERE "userId" = ${userId}::uuid AND "period" = ${period}::date
      AND "usedTokens" + "reservedTokens" + ${tokens} <= ${quota}`;
  return held === 1;
}

export async function remainingQuotaTokens(tx: PrismaTx, userId: string, period: Date, quota: number): Promise<number> {
  const row = await tx.quotaPeriod.findUnique({ where: { userId_period: { userId, period } } });
  return Math.max(0, quota - Number((row?.usedTokens ?? 0n) + (row?.reservedTokens ?? 0n)));
}

/** Releases a hold and charges what was used, which may be more than was held. */
export async function chargeQuotaTokens(tx: PrismaTx, userId: string, period: Date, released: number, used: number): Promise<void> {
  await tx.$executeRaw`
    UPDATE "QuotaPeriod"
    SET "reservedTokens" = GREATEST("reservedTokens" - ${released}, 0),
        "usedTokens" = GREATEST("usedTokens" + ${used}, 0), "updatedAt" = now()
    WHERE "userId" = ${userId}::uuid AND "period" = ${period}::date`;
}
