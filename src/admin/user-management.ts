import type { RevocationBus } from '../auth/revocations.js';
import { revokeSessions } from '../auth/accounts.js';
import type { ChatService } from '../chat/chat-service.js';
import type { PrismaClient } from '../db/client.js';
import { badInput } from '../errors.js';
import type { Plan, Role, User } from '../generated/prisma/client.js';
import { RUNNING_STATUSES } from '../generation/finalize.js';
import type { Logger } from '../logger.js';
import { recordAudit } from './audit-log.js';
import { lockUser } from '../db/user-lock.js';

export interface UserManagementDeps {
  prisma: PrismaClient;
  /** Closes the user's open connections on every instance. */
  revocations: Pick<RevocationBus, 'announce'>;
  /** Stops a reply wherever it runs, and bills it. */
  chat: Pick<ChatService, 'stopGeneration'>;
  logger: Logger;
}

/** An admin cannot take away their own ADMIN role: the service never loses its last admin by accident. */
export async function setUserRole(deps: UserManagementDeps, actorUserId: string, userId: string, role: Role): Promise<User> {
  if (userId === actorUserId && role !== 'ADMIN') throw badInput('You cannot remove your own admin role', 'role');
  const user = await deps.prisma.$transaction(async (tx) => {
    const before = await lockUser(tx, userId);
    if (before.role === role) return before;
    const user = await tx.user.update({ where: { id: userId }, data: { role } });
    await recordAudit(tx, { actorUserId, action: 'SET_ROLE', targetUserId: userId, details: { before: before.role, after: role } });
    return user;
  });
  // A demoted admin's cached viewers must not keep the role, on any instance.
  await deps.revocations.announce({ kind: 'userChanged', userId });
  return user;
}

/** Sets the plan by hand; a later Stripe subscription event for the user sets it again. */
export async function setUserPlan(deps: UserManagementDeps, actorUserId: string, userId: string, plan: Plan): Promise<User> {
  return deps.prisma.$transaction(async (tx) => {
    const before = await lockUser(tx, userId);
    if (before.plan === plan) return before;
    const user = await tx.user.update({ where: { id: userId }, data: { plan } });
    await recordAudit(tx, { actorUserId, action: 'SET_PLAN', targetUserId: userId, details: { before: before.plan, after: plan } });
    return user;
  });
}

/**
 * Deactivation ends everything the user has running: every credential is refused from the
 * commit on (access and refresh tokens are revoked too, so reactivation means signing in again;
 * API keys work again after reactivation), open connections are closed on every instance, and
 * running replies are stopped and billed. Their data stays.
 */
export async function deactivateUser(deps: UserManagementDeps, actorUserId: string, userId: string): Promise<User> {
  if (userId === actorUserId) throw badInput('You cannot deactivate your own account', 'userId');
  await deps.prisma.$transaction(async (tx) => {
    const before = await lockUser(tx, userId);
    if (before.deactivatedAt) return;
    await revokeSessions(tx, userId, { deactivatedAt: new Date() });
    await recordAudit(tx, { actorUserId, action: 'DEACTIVATE_USER', targetUserId: userId });
  });
  await deps.revocations.announce({ kind: 'user', userId });
  await stopRunningReplies(deps, userId);
  return deps.prisma.user.findUniqueOrThrow({ where: { id: userId } });
}

export async function reactivateUser(deps: UserManagementDeps, actorUserId: string, userId: string): Promise<User> {
  return deps.prisma.$transaction(async (tx) => {
    const before = await lockUser(tx, userId);
    if (!before.deactivatedAt) return before;
    const user = await tx.user.update({ where: { id: userId }, data: { deactivatedAt: null } });
    await recordAudit(tx, { actorUserId, action: 'REACTIVATE_USER', targetUserId: userId });
    return user;
  });
}

// No new reply can start once the deactivation committed (sending checks it under the same row
// lock), so these are all the replies there will be.
async function stopRunningReplies(deps: UserManagementDeps, userId: string): Promise<void> {
  const running = await deps.prisma.message.findMany({
    where: { userId, role: 'ASSISTANT', status: { in: RUNNING_STATUSES } },
    select: { id: true },
  });
  const results = await Promise.allSettled(running.map((message) => deps.chat.stopGeneration(userId, message.id)));
  results.forEach((result, index) => {
    if (result.status === 'rejected') {
      deps.logger.error({ err: result.reason, messageId: running[index]!.id }, 'could not stop a reply of a deactivated user');
    }
  });
}
