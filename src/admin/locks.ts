import type { PrismaTx } from '../db/client.js';
import { lockUser } from '../db/user-lock.js';
import { notFound } from '../errors.js';
import type { User } from '../generated/prisma/client.js';

/**
 * Reads the user an admin acts on under their row lock (the one metering and sign-in take too),
 * so that what the audit entry records as "before" is what the change replaced.
 */
export async function lockTargetUser(tx: PrismaTx, userId: string): Promise<User> {
  const user = await lockUser(tx, userId);
  if (!user) throw notFound('User');
  return user;
}
