import type { PrismaTx } from '../db/client.js';
import { AppError } from '../errors.js';
import type { Plan } from '../generated/prisma/client.js';

export type PlanQuotas = Record<Plan, number>;

/** First day of the UTC month: the key of a quota period. */
export function quotaPeriodOf(date = new Date()): Date {
  return new Date(Date.UTC(date.getUTCFullYear(), date.getUTCMonth(), 1));
}

export interface Reservation {
  userId: string;
  period: Date;
  tokens: number;
}

/**
 * Reserves the worst case of a call against the monthly quota, atomically: the conditional
 * UPDATE takes the row lock, so of concurrent reservations only those that fit succeed and the
 * reserved plus used tokens never exceed the quota. Run it in the transaction that writes what
 * the reservation is for, so that a reservation never exists without its message.
 */
export async function reserveTokens(
  prisma: PrismaTx,
  userId: string,
  tokens: number,
  quota: number,
  period = quotaPeriodOf(),
): Promise<Reservation> {
  await prisma.$executeRaw`
    INSERT INTO "QuotaPeriod" ("userId", "period", "usedTokens", "reservedTokens", "updatedAt")
    VALUES (${userId}::uuid, ${period}::date, 0, 0, now())
    ON CONFLICT ("userId", "period") DO NOTHING`;
  const reserved = await prisma.$executeRaw`
    UPDATE "QuotaPeriod"
    SET "reservedTokens" = "reservedTokens" + ${tokens}, "updatedAt" = now()
    WHERE "userId" = ${userId}::uuid AND "period" = ${period}::date
      AND "usedTokens" + "reservedTokens" + ${tokens} <= ${quota}`;
  if (reserved !== 1) {
    const row = await prisma.quotaPeriod.findUnique({ where: { userId_period: { userId, period } } });
    const remaining = Math.max(0, quota - Number((row?.usedTokens ?? 0n) + (row?.reservedTokens ?? 0n)));
    throw new AppError('QUOTA_EXCEEDED', 'Monthly token quota exceeded', { quota, remaining, requested: tokens });
  }
  return { userId, period, tokens };
}

/** SQL that turns a reservation into used tokens; run inside the transaction that records usage. */
export function settleReservationSql(prisma: PrismaTx, reservation: Reservation, usedTokens: number) {
  // What was used is bounded by what was reserved: the reservation is the promise we checked.
  const used = Math.min(usedTokens, reservation.tokens);
  return prisma.$executeRaw`
    UPDATE "QuotaPeriod"
    SET "reservedTokens" = GREATEST("reservedTokens" - ${reservation.tokens}, 0),
        "usedTokens" = "usedTokens" + ${used}, "updatedAt" = now()
    WHERE "userId" = ${reservation.userId}::uuid AND "period" = ${reservation.period}::date`;
}
