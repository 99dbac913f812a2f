import type { PrismaTx } from '../db/client.js';
import { lockUser } from '../db/user-lock.js';
import { AppError } from '../errors.js';
import type { Plan } from '../generated/prisma/client.js';

/** Locks the user's row (see lockUser) and returns their plan; an unknown user is NOT_FOUND. */
export async function lockSpendingUser(tx: PrismaTx, userId: string): Promise<{ plan: Plan }> {
  const user = await lockUser(tx, userId);
  if (!user) throw new AppError('NOT_FOUND', 'User not found');
  return user;
}

/** Holds credits if the balance not already held covers them. */
export async function tryHoldCredits(tx: PrismaTx, userId: string, micros: bigint): Promise<boolean> {
  const held = await tx.$executeRaw`
    UPDATE "User" SET "creditHeldMicros" = "creditHeldMicros" + ${micros}
    WHERE "id" = ${userId}::uuid AND "creditBalanceMicros" - "creditHeldMicros" >= ${micros}`;
  return held === 1;
}

export async function holdCredits(tx: PrismaTx, userId: string, micros: bigint): Promise<bigint> {
  if (await tryHoldCredits(tx, userId, micros)) return micros;
  const [user] = await tx.$queryRaw<Array<{ available: bigint }>>`
    SELECT "creditBalanceMicros" - "creditHeldMicros" AS "available" FROM "User" WHERE "id" = ${userId}::uuid`;
  throw new AppError('INSUFFICIENT_CREDITS', 'Not enough credits for this call; buy credits or lower maxTokens', {
    requiredMicros: Number(micros),
    availableMicros: Math.max(0, Number(user?.available ?? 0n)),
  });
}

export async function releaseCreditHold(tx: PrismaTx, userId: string, micros: bigint): Promise<void> {
  if (micros === 0n) return;
  await tx.$executeRaw`
    UPDATE "User" SET "creditHeldMicros" = GREATEST("creditHeldMicros" - ${micros}, 0)
    WHERE "id" = ${userId}::uuid`;
}

/**
 * Holds a call's worst case against its API key's monthly budget, when the key has one. A call
 * over it is refused with QUOTA_EXCEEDED and `scope: "apiKey"`. Returns what was held.
 */
export async function holdKeyBudget(tx: PrismaTx, apiKeyId: string, period: Date, micros: bigint): Promise<bigint> {
  const [key] = await tx.$queryRaw<Array<{ budget: bigint | null }>>`
    SELECT "monthlyBudgetMicros" AS "budget" FROM "ApiKey" WHERE "id" = ${apiKeyId}::uuid`;
  await tx.$executeRaw`
    INSERT INTO "ApiKeySpend" ("apiKeyId", "period", "spentMicros", "heldMicros", "updatedAt")
    VALUES (${apiKeyId}::uuid, ${period}::date, 0, 0, now())
    ON CONFLICT ("apiKeyId", "period") DO NOTHING`;
  if (key?.budget == null) return 0n;
  const held = await tx.$executeRaw`
    UPDATE "ApiKeySpend" SET "heldMicros" = "heldMicros" + ${micros}, "updatedAt" = now()
    WHERE "apiKeyId" = ${apiKeyId}::uuid AND "period" = ${period}::date
      AND "spentMicros" + "heldMicros" + ${micros} <= ${key.budget}`;
  if (held === 1) return micros;
  const spend = await tx.apiKeySpend.findUniqueOrThrow({ where: { apiKeyId_period: { apiKeyId, period } } });
  throw new AppError('QUOTA_EXCEEDED', "This API key's monthly budget does not cover this call", {
    scope: 'apiKey',
    budgetMicros: Number(key.budget),
    remainingMicros: Math.max(0, Number(key.budget - spend.spentMicros - spend.heldMicros)),
    requiredMicros: Number(micros),
  });
}

/** Releases what a call held against its key and adds what it cost to the key's spend (a correction may add a negative). */
export async function chargeKeySpend(tx: PrismaTx, apiKeyId: string, period: Date, released: bigint, spent: bigint): Promise<void> {
  await tx.$executeRaw`
    INSERT INTO "ApiKeySpend" ("apiKeyId", "period", "spentMicros", "heldMicros", "updatedAt")
    VALUES (${apiKeyId}::uuid, ${period}::date, GREATEST(${spent}, 0), 0, now())
    ON CONFLICT ("apiKeyId", "period") DO UPDATE SET
      "heldMicros" = GREATEST("ApiKeySpend"."heldMicros" - ${released}, 0),
      "spentMicros" = GREATEST("ApiKeySpend"."spentMicros" + ${spent}, 0),
      "updatedAt" = now()`;
}
