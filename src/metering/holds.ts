import type { PrismaTx } from '../db/client.js';

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
