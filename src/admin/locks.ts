import type { PrismaTx } from '../db/client.js';
import { notFound } from '../errors.js';
import type { User } from '../generated/prisma/client.js';

/**
 * Reads the user an admin acts on, after taking their row lock (the one metering and sign-in
 * take too), so that what the audit entry records as "before" is what the change replaced.
 */
export async function lockTargetUser(tx: PrismaTx, userId: string): Promise<User> {
  const locked = await tx.$queryRaw<Array<{ id: string }>>`
    SELECT "id" FROM "User" WHERE "id" = ${userId}::uuid FOR NO KEY UPDATE`;
  if (locked.length === 0) throw notFound('User');
  return tx.user.findUniqueOrThrow({ where: { id: userId } });
}
