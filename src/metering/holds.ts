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

export async function releaseCreditHold(tx: PrismaTx, userId: string, micros: bigint): Promise<void> {
  if (micros === 0n) return;
  await tx.$executeRaw`
    UPDATE "User" SET "creditHeldMicros" = GREATEST("creditHeldMicros" - ${micros}, 0)
    WHERE "id" = ${userId}::uuid`;
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
