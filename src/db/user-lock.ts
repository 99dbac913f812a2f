import { notFound } from '../errors.js';
import type { User } from '../generated/prisma/client.js';
import type { PrismaTx } from './client.js';

/**
 * The user's row, read under its row lock, held until the transaction ends; an unknown user is
 * NOT_FOUND. Everything that changes what a user may spend or do (reservations and settlements,
 * Stripe effects, admin actions, refresh-token rotation) takes it, so such changes line up one
 * after another.
 *
 * Lock order, kept by every writer so that none can deadlock another: Reservation, User,
 * Conversation, Message. Settling and recording a generation's end (prisma/sql) take them in
 * that order; a send takes the user, then its conversation, then inserts its messages; deleting
 * a conversation takes no reservation or user, and locks the conversation before its messages
 * (the cascade).
 */
export async function lockUser(tx: PrismaTx, userId: string): Promise<User> {
  const [user] = await tx.$queryRaw<User[]>`SELECT * FROM "User" WHERE "id" = ${userId}::uuid FOR NO KEY UPDATE`;
  if (!user) throw notFound('User');
  return user;
}
