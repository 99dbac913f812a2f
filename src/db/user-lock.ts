import type { User } from '../generated/prisma/client.js';
import type { PrismaTx } from './client.js';

/**
 * The user's row, read under its row lock, held until the transaction ends. Everything that
 * changes what a user may spend or do (reservations and settlements, Stripe effects, admin
 * actions, refresh-token rotation) takes it first, so such changes line up one after another and
 * always take their locks in the same order (user first), which keeps them free of deadlocks.
 */
export async function lockUser(tx: PrismaTx, userId: string): Promise<User | undefined> {
  const [user] = await tx.$queryRaw<User[]>`SELECT * FROM "User" WHERE "id" = ${userId}::uuid FOR NO KEY UPDATE`;
  return user;
}
