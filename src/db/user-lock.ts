import { notFound } from '../errors.js';
import type { User } from '../generated/prisma/client.js';
import type { PrismaTx } from './client.js';

/**
 * The user's row, read under its row lock, held until the transaction ends; an unknown user is
 * NOT_FOUND. Everything that changes what a user may spend or do (reservations and settlements,
 * Stripe effects, admin actions, refresh-token rotation) takes it, so such changes line up one
 * after another.
 */
export async function lockUser(tx: PrismaTx, userId: string): Promise<User> {
  const [user] = await tx.$queryRaw<User[]>`SELECT * FROM "User" WHERE "id" = ${userId}::uuid FOR NO KEY UPDATE`;
  if (!user) throw notFound('User');
  return user;
}
