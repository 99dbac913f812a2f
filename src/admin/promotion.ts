import type { PrismaClient } from '../db/client.js';
import type { User } from '../generated/prisma/client.js';
import { recordAudit } from './audit-log.js';

/** How an account became an admin without another admin: the ADMIN_EMAILS setting or the CLI. */
export type PromotionSource = 'ADMIN_EMAILS' | 'cli';

/**
 * Makes the user an ADMIN, with an audit entry whose actor is the user themself. Returns false
 * when they already were one (nothing is written then).
 */
export async function promoteToAdmin(prisma: PrismaClient, userId: string, via: PromotionSource): Promise<boolean> {
  return prisma.$transaction(async (tx) => {
    const { count } = await tx.user.updateMany({ where: { id: userId, role: { not: 'ADMIN' } }, data: { role: 'ADMIN' } });
    if (count === 0) return false;
    await recordAudit(tx, { actorUserId: userId, action: 'PROMOTE_ADMIN', targetUserId: userId, details: { via } });
    return true;
  });
}

/** On sign-up and sign-in: an account whose e-mail is in ADMIN_EMAILS becomes an ADMIN. */
export async function promoteIfListed(prisma: PrismaClient, user: User, adminEmails: readonly string[]): Promise<User> {
  if (user.role === 'ADMIN' || !adminEmails.includes(user.email)) return user;
  await promoteToAdmin(prisma, user.id, 'ADMIN_EMAILS');
  return { ...user, role: 'ADMIN' };
}

/** For the command line: promotes the account with this e-mail (any case). */
export async function promoteByEmail(prisma: PrismaClient, email: string): Promise<'promoted' | 'already-admin' | 'not-found'> {
  const user = await prisma.user.findUnique({ where: { email: email.trim().toLowerCase() } });
  if (!user) return 'not-found';
  return (await promoteToAdmin(prisma, user.id, 'cli')) ? 'promoted' : 'already-admin';
}
