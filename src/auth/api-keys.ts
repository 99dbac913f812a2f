import type { PrismaClient } from '../db/client.js';
import { badInput, notFound } from '../errors.js';
import type { ApiKey, ApiKeyScope, User } from '../generated/prisma/client.js';
import type { RevocationBus } from './revocations.js';
import { generateSecret, hashSecret } from './secrets.js';

export const API_KEY_PREFIX = 'sk';
export const MAX_API_KEYS_PER_USER = 50;
// Writing lastUsedAt on every request would turn each read into a write; a minute is precise enough.
const LAST_USED_RESOLUTION_MS = 60_000;

export interface ApiKeyOptions {
  name: string;
  scopes?: ApiKeyScope[] | null;
  monthlyBudgetMicros?: number | null;
  expiresAt?: Date | null;
}

export const DEFAULT_API_KEY_SCOPES: ApiKeyScope[] = ['CHAT', 'READ'];
const MAX_BUDGET_MICROS = 1_000_000_000_000;

export async function createApiKey(
  prisma: PrismaClient,
  userId: string,
  options: ApiKeyOptions,
  now = new Date(),
): Promise<{ apiKey: ApiKey; secret: string }> {
  const name = options.name.trim();
  if (name.length === 0 || name.length > 100) throw badInput('Name must be 1 to 100 characters', 'name');
  const scopes = [...new Set(options.scopes ?? DEFAULT_API_KEY_SCOPES)];
  if (scopes.length === 0) throw badInput('A key needs at least one scope', 'scopes');
  const budget = options.monthlyBudgetMicros;
  if (budget != null && (!Number.isSafeInteger(budget) || budget < 0 || budget > MAX_BUDGET_MICROS)) {
    throw badInput(`monthlyBudgetMicros must be 0 to ${MAX_BUDGET_MICROS}`, 'monthlyBudgetMicros');
  }
  if (options.expiresAt && options.expiresAt.getTime() <= now.getTime()) throw badInput('expiresAt must be in the future', 'expiresAt');
  const active = await prisma.apiKey.count({ where: { userId, revokedAt: null } });
  if (active >= MAX_API_KEYS_PER_USER) throw badInput(`At most ${MAX_API_KEYS_PER_USER} active API keys per user`);
  const secret = generateSecret(API_KEY_PREFIX);
  const apiKey = await prisma.apiKey.create({
    data: {
      userId,
      name,
      prefix: secret.slice(0, 10),
      secretHash: hashSecret(secret),
      scopes,
      monthlyBudgetMicros: budget == null ? null : BigInt(budget),
      expiresAt: options.expiresAt ?? null,
    },
  });
  return { apiKey, secret };
}

/** Revokes the key and closes the connections signed in with it, on every instance. */
export async function revokeApiKey(
  deps: { prisma: PrismaClient; revocations: Pick<RevocationBus, 'announce'> },
  userId: string,
  id: string,
): Promise<ApiKey> {
  const key = await deps.prisma.apiKey.findFirst({ where: { id, userId } });
  if (!key) throw notFound('API key');
  if (key.revokedAt) return key;
  const revoked = await deps.prisma.apiKey.update({ where: { id }, data: { revokedAt: new Date() } });
  await deps.revocations.announce({ kind: 'apiKey', apiKeyId: id });
  return revoked;
}

/**
 * Returns the active (not revoked, not expired) key for a presented secret, with its user's row
 * (read in the same statement), recording when it was last used.
 */
export async function findActiveApiKey(prisma: PrismaClient, secret: string): Promise<(ApiKey & { user: User }) | null> {
  const key = await prisma.apiKey.findUnique({ where: { secretHash: hashSecret(secret) }, include: { user: true } });
  const now = new Date();
  if (!key || key.revokedAt || (key.expiresAt && key.expiresAt <= now)) return null;
  if (!key.lastUsedAt || now.getTime() - key.lastUsedAt.getTime() > LAST_USED_RESOLUTION_MS) {
    await prisma.apiKey.update({ where: { id: key.id }, data: { lastUsedAt: now } });
    key.lastUsedAt = now;
  }
  return key;
}
