import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import type { Config } from '../config.js';
import type { PrismaClient } from '../db/client.js';
import { AppError, badInput, unauthenticated } from '../errors.js';
import type { User } from '../generated/prisma/client.js';
import { issueAccessToken } from './access-tokens.js';
import { assertStrongPassword, hashPassword, verifyPassword } from './passwords.js';
import { generateSecret, hashSecret } from './secrets.js';

export interface AccountDeps {
  prisma: PrismaClient;
  auth: Config['auth'];
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
  const passwordHash = await hashPassword(input.password, deps.auth.passwordHashCost);
  try {
    const user = await deps.prisma.user.create({ data: { email, name, passwordHash } });
    return await startSession(deps, user);
  } catch (error) {
    if (isUniqueViolation(error)) throw badInput('An account with this email already exists', 'email');
    throw error;
  }
}

// Verifying against a real hash when the email is unknown keeps both failures equally slow,
// so response time does not reveal which emails have accounts.
let dummyHash: Promise<string> | undefined;

export async function login(deps: AccountDeps, input: { email: string; password: string }): Promise<AuthSession> {
  const email = input.email.trim().toLowerCase();
  const user = await deps.prisma.user.findUnique({ where: { email } });
  if (!user?.passwordHash) {
    dummyHash ??= hashPassword('not-a-real-password', deps.auth.passwordHashCost);
    await verifyPassword(input.password.slice(0, 256), await dummyHash);
    throw invalidCredentials();
  }
  if (input.password.length > 256 || !(await verifyPassword(input.password, user.passwordHash))) {
    throw invalidCredentials();
  }
  if (user.deactivatedAt) throw unauthenticated('Account is deactivated');
  return startSession(deps, user);
}

/** Issues an access token and the first refresh token of a new family. */
export async function startSession(deps: AccountDeps, user: User, familyId: string = randomUUID()): Promise<AuthSession> {
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
  const stored = await deps.prisma.refreshToken.findUnique({
    where: { tokenHash: hashSecret(presented) },
    include: { user: true },
  });
  if (!stored || stored.revokedAt || stored.expiresAt <= new Date() || stored.user.deactivatedAt) {
    throw unauthenticated('Refresh token is invalid or expired');
  }
  // Conditional update: of two concurrent uses of the same token, exactly one wins.
  const { count } = await deps.prisma.refreshToken.updateMany({
    where: { id: stored.id, usedAt: null, revokedAt: null },
    data: { usedAt: new Date() },
  });
  if (count !== 1) {
    await revokeFamily(deps.prisma, stored.familyId);
    throw unauthenticated('Refresh token was already used; the session has been revoked');
  }
  return startSession(deps, stored.user, stored.familyId);
}

/** Ends the session the refresh token belongs to. Returns false for an unknown token. */
export async function logout(deps: AccountDeps, presented: string): Promise<boolean> {
  const stored = await deps.prisma.refreshToken.findUnique({ where: { tokenHash: hashSecret(presented) } });
  if (!stored) return false;
  await revokeFamily(deps.prisma, stored.familyId);
  return true;
}

async function revokeFamily(prisma: PrismaClient, familyId: string): Promise<void> {
  await prisma.refreshToken.updateMany({ where: { familyId, revokedAt: null }, data: { revokedAt: new Date() } });
}

export async function updateProfile(
  deps: AccountDeps,
  userId: string,
  input: { name?: string | null; currentPassword?: string | null; newPassword?: string | null },
): Promise<User> {
  const data: { name?: string; passwordHash?: string } = {};
  if (input.name != null) data.name = normalizeName(input.name);
  if (input.newPassword != null) {
    const user = await deps.prisma.user.findUniqueOrThrow({ where: { id: userId } });
    if (user.passwordHash && !(input.currentPassword && (await verifyPassword(input.currentPassword, user.passwordHash)))) {
      throw new AppError('FORBIDDEN', 'Current password is incorrect', { field: 'currentPassword' });
    }
    assertStrongPassword(input.newPassword, user.email);
    data.passwordHash = await hashPassword(input.newPassword, deps.auth.passwordHashCost);
  }
  const user = await deps.prisma.user.update({ where: { id: userId }, data });
  // A password change signs out every other session.
  if (data.passwordHash) {
    await deps.prisma.refreshToken.updateMany({ where: { userId, revokedAt: null }, data: { revokedAt: new Date() } });
  }
  return user;
}

export function isUniqueViolation(error: unknown): boolean {
  return typeof error === 'object' && error !== null && (error as { code?: string }).code === 'P2002';
}
