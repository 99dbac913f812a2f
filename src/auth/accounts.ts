import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import type { Config } from '../config.js';
import type { PrismaClient, PrismaTx } from '../db/client.js';
import { AppError, badInput, forbidden, unauthenticated } from '../errors.js';
import type { Prisma, User } from '../generated/prisma/client.js';
import { createUserWithSignupCredits } from '../metering/credits.js';
import { promoteIfListed } from '../admin/promotion.js';
import { issueAccessToken } from './access-tokens.js';
import type { RevocationBus } from './revocations.js';
import { assertStrongPassword, type PasswordHasher } from './passwords.js';
import { generateSecret, hashSecret } from './secrets.js';

export interface AccountDeps {
  prisma: PrismaClient;
  auth: Config['auth'];
  /** This app's bounded password hashing. */
  passwords: PasswordHasher;
  /** Told when sessions end, so that connections signed in with them are closed everywhere. */
  revocations: Pick<RevocationBus, 'announce'>;
  /** Credits every new account starts with. */
  signupCreditsMicros: number;
  /** Lower-cased e-mails of accounts that become ADMIN when they sign up or sign in. */
  adminEmails: readonly string[];
}

export interface AuthSession {
  accessToken: string;
  refreshToken: string;
  expiresAt: Date;
  user: User;
}

const emailSchema = z.email().max(254);
export const MAX_NAME_LENGTH = 100;

export function normalizeEmail(raw: string): string {
  const email = raw.trim().toLowerCase();
  if (!emailSchema.safeParse(email).success) throw badInput('Email address is not valid', 'email');
  return email;
}

export function normalizeName(raw: string): string {
  const name = raw.trim().replace(/\s+/g, ' ');
  if (name.length === 0) throw badInput('Name must not be empty', 'name');
  if (name.length > MAX_NAME_LENGTH) throw badInput(`Name must be at most ${MAX_NAME_LENGTH} characters`, 'name');
  return name;
}

const invalidCredentials = () => unauthenticated('Email or password is incorrect');

export async function register(
  deps: AccountDeps,
  input: { email: string; password: string; name: string },
): Promise<AuthSession> {
  const email = normalizeEmail(input.email);
  const name = normalizeName(input.name);
  assertStrongPassword(input.password, email);
  const passwordHash = await deps.passwords.hash(input.password, deps.auth.passwordHashCost);
  try {
    const user = await createUserWithSignupCredits(deps.prisma, { email, name, passwordHash }, deps.signupCreditsMicros);
    return await startSession(deps, await promoteIfListed(deps.prisma, user, deps.adminEmails));
  } catch (error) {
    if (isUniqueViolation(error)) throw badInput('An account with this email already exists', 'email');
    throw error;
  }
}

export async function login(deps: AccountDeps, input: { email: string; password: string }): Promise<AuthSession> {
  const email = input.email.trim().toLowerCase();
  const user = await deps.prisma.user.findUnique({ where: { email } });
  if (!user?.passwordHash) {
    await deps.passwords.verifyUnknownAccount(input.password.slice(0, 256), deps.auth.passwordHashCost);
    throw invalidCredentials();
  }
  if (input.password.length > 256 || !(await deps.passwords.verify(input.password, user.passwordHash))) {
    throw invalidCredentials();
  }
  if (user.deactivatedAt) throw unauthenticated('Account is deactivated');
  return startSession(deps, await promoteIfListed(deps.prisma, user, deps.adminEmails));
}

/** Issues an access token and a refresh token: the first of a new family, or the next one of a rotation. */
export async function startSession(
  deps: { prisma: PrismaTx; auth: AccountDeps['auth'] },
  user: User,
  familyId: string = randomUUID(),
): Promise<AuthSession> {
  const refreshToken = generateSecret('rt');
  await deps.prisma.refreshToken.create({
    data: {
      userId: user.id,
      familyId,
      tokenHash: hashSecret(refreshToken),
      expiresAt: new Date(Date.now() + deps.auth.refreshTokenTtlSeconds * 1000),
    },
  });
  const { token, expiresAt } = await issueAccessToken(deps.auth, user.id);
  return { accessToken: token, refreshToken, expiresAt, user };
}

/**
 * Rotation: a refresh token works once. Presenting one that was already used means it was
 * copied, so the whole family (every token descended from the same login) is revoked.
 */
export async function refreshSession(deps: AccountDeps, presented: string): Promise<AuthSession> {
  const session = await deps.prisma.$transaction(async (tx) => {
    const stored = await findRefreshTokenLocked(tx, presented);
    if (!stored || stored.revokedAt || stored.expiresAt <= new Date() || stored.user.deactivatedAt) {
      throw unauthenticated('Refresh token is invalid or expired');
    }
    if (stored.usedAt) {
      // Returned, not thrown, so that the revocation commits.
      await revokeFamily(tx, stored.familyId);
      return null;
    }
    await tx.refreshToken.update({ where: { id: stored.id }, data: { usedAt: new Date() } });
    return startSession({ prisma: tx, auth: deps.auth }, stored.user, stored.familyId);
  });
  if (!session) throw unauthenticated('Refresh token was already used; the session has been revoked');
  return session;
}

/** Ends the session the refresh token belongs to. Returns false for an unknown token. */
export async function logout(deps: AccountDeps, presented: string): Promise<boolean> {
  return deps.prisma.$transaction(async (tx) => {
    const stored = await findRefreshTokenLocked(tx, presented);
    if (!stored) return false;
    await revokeFamily(tx, stored.familyId);
    return true;
  });
}

/**
 * Signs the user out of every session: revokes all their refresh tokens and refuses every access
 * token issued before now. API keys stay valid.
 */
export async function logoutEverywhere(deps: AccountDeps, userId: string): Promise<void> {
  await deps.prisma.$transaction((tx) => revokeSessions(tx, userId));
  await deps.revocations.announce({ kind: 'sessions', userId });
}

/**
 * Reads a refresh token after locking its user's row. Rotations and revocations take that lock
 * first, so they run one after another: a revocation sees the token that a concurrent rotation
 * inserted, and a rotation sees a revocation that committed while it waited.
 */
async function findRefreshTokenLocked(tx: PrismaTx, presented: string) {
  const tokenHash = hashSecret(presented);
  // NO KEY UPDATE: does not block inserts of rows that reference the user (messages, tokens).
  await tx.$queryRaw`
    SELECT 1 FROM "User" u JOIN "RefreshToken" t ON t."userId" = u."id"
    WHERE t."tokenHash" = ${tokenHash}
    FOR NO KEY UPDATE OF u`;
  return tx.refreshToken.findUnique({ where: { tokenHash }, include: { user: true } });
}

async function revokeFamily(tx: PrismaTx, familyId: string): Promise<void> {
  await tx.refreshToken.updateMany({ where: { familyId, revokedAt: null }, data: { revokedAt: new Date() } });
}

// Updating the user row first takes the lock of findRefreshTokenLocked.
export async function revokeSessions(tx: PrismaTx, userId: string, data: Prisma.UserUpdateInput = {}): Promise<User> {
  const now = new Date();
  const user = await tx.user.update({ where: { id: userId }, data: { ...data, sessionsRevokedAt: now } });
  await tx.refreshToken.updateMany({ where: { userId, revokedAt: null }, data: { revokedAt: now } });
  return user;
}

export async function updateProfile(
  deps: AccountDeps,
  userId: string,
  input: { name?: string | null; currentPassword?: string | null; newPassword?: string | null },
): Promise<User> {
  const data: { name?: string; passwordHash?: string } = {};
  if (input.name != null) data.name = normalizeName(input.name);
  if (input.newPassword == null) {
    const updated = await deps.prisma.user.update({ where: { id: userId }, data });
    // Cached viewers carry the old name: the next request reads it again, on every instance.
    await deps.revocations.announce({ kind: 'userChanged', userId });
    return updated;
  }

  const user = await deps.prisma.user.findUniqueOrThrow({ where: { id: userId } });
  // Whoever holds an identity provider token could otherwise give the account a password of
  // their own, one that outlives the provider's sign-out and account controls.
  if (!user.passwordHash) {
    throw forbidden('This account signs in through its identity provider and cannot have a password');
  }
  if (!(input.currentPassword && (await deps.passwords.verify(input.currentPassword, user.passwordHash)))) {
    throw new AppError('FORBIDDEN', 'Current password is incorrect', { field: 'currentPassword' });
  }
  assertStrongPassword(input.newPassword, user.email);
  data.passwordHash = await deps.passwords.hash(input.newPassword, deps.auth.passwordHashCost);
  // Someone who knew the old password may hold a session: all of them end, this one included.
  const updated = await deps.prisma.$transaction((tx) => revokeSessions(tx, userId, data));
  await deps.revocations.announce({ kind: 'sessions', userId });
  return updated;
}

export function isUniqueViolation(error: unknown): boolean {
  return typeof error === 'object' && error !== null && (error as { code?: string }).code === 'P2002';
}
