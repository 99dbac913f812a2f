import { decodeJwt } from 'jose';
import type { Config } from '../config.js';
import type { PrismaClient } from '../db/client.js';
import { createUserWithSignupCredits } from '../metering/credits.js';
import { promoteIfListed } from '../admin/promotion.js';
import { forbidden, invalidCredential } from '../errors.js';
import type { ApiKeyScope, Role, User } from '../generated/prisma/client.js';
import { verifyAccessToken } from './access-tokens.js';
import { API_KEY_PREFIX, findActiveApiKey } from './api-keys.js';
import { createOidcVerifier, type OidcIdentity } from './oidc.js';
import type { ViewerCache } from './viewer-cache.js';

/** Who is making a request, and how they proved it. */
export interface Viewer {
  id: string;
  role: Role;
  via: 'access_token' | 'api_key' | 'oidc';
  apiKeyId?: string;
  /** What the API key may do (only for `via: 'api_key'`). */
  apiKeyScopes?: ApiKeyScope[];
  /** The user's row as read when the request was authenticated. */
  user: User;
}

/**
 * API keys call the API; they do not manage credentials, so a leaked key cannot mint more keys,
 * change the password or sign its owner out.
 */
export function assertNotApiKey(viewer: Viewer, action: string): void {
  if (viewer.via === 'api_key') throw forbidden(`An API key cannot ${action}; sign in with your account instead`);
}

export type Authenticate = (authorization: string | null | undefined) => Promise<Viewer | null>;

export const MAX_CREDENTIAL_LENGTH = 8192;

/**
 * Turns an Authorization value into a Viewer. No credential means anonymous (null); a
 * credential that does not check out fails the whole request with HTTP 401, so clients know to
 * sign in again. A viewer authenticated within AUTH_CACHE_TTL_MS comes from `cache`.
 */
export function createAuthenticator(deps: { prisma: PrismaClient; config: Config; cache: ViewerCache }): Authenticate {
  const { prisma, config, cache } = deps;
  const verifyOidc = config.oidc ? createOidcVerifier(config.oidc) : undefined;

  const activeUser = async (userId: string): Promise<User> => assertActive(await prisma.user.findUnique({ where: { id: userId } }));

  /** The viewer, and when the credential itself expires (null: never). */
  const verify = async (credential: string): Promise<{ viewer: Viewer; expiresAt: number | null }> => {
    if (credential.startsWith(`${API_KEY_PREFIX}_`)) {
      const key = await findActiveApiKey(prisma, credential);
      if (!key) throw invalidCredential('API key is invalid, revoked or expired');
      const user = assertActive(key.user);
      const viewer: Viewer = { id: user.id, role: user.role, via: 'api_key', apiKeyId: key.id, apiKeyScopes: key.scopes, user };
      return { viewer, expiresAt: key.expiresAt?.getTime() ?? null };
    }

    // The unverified issuer only chooses which verifier runs; each verifier checks everything.
    const issuer = unverifiedIssuer(credential);
    if (verifyOidc && config.oidc && issuer === config.oidc.issuer) {
      const identity = await verifyOidc(credential);
      const found = await findOrCreateOidcUser(prisma, identity, config.billing.signupCreditsMicros);
      if (found.deactivatedAt) throw invalidCredential('Account is deactivated');
      const user = await promoteIfListed(prisma, found, config.admin.emails);
      return { viewer: { id: user.id, role: user.role, via: 'oidc', user }, expiresAt: identity.expiresAt };
    }
    const { userId, issuedAt, expiresAt } = await verifyAccessToken(config.auth, credential);
    const user = await activeUser(userId);
    if (revokedBefore(user, issuedAt)) throw invalidCredential('Access token was revoked; sign in again');
    return { viewer: { id: user.id, role: user.role, via: 'access_token', user }, expiresAt };
  };

  return async (authorization) => {
    if (!authorization) return null;
    const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
    if (!match?.[1] || match[1].length > MAX_CREDENTIAL_LENGTH) {
      throw invalidCredential('Authorization must be "Bearer <token>"');
    }
    const credential = match[1];
    const cached = cache.get(credential);
    if (cached) return cached;
    const generation = cache.generation();
    const { viewer, expiresAt } = await verify(credential);
    cache.set(credential, viewer, expiresAt, generation);
    return viewer;
  };
}

function assertActive(user: User | null): User {
  if (!user) throw invalidCredential('Account no longer exists');
  if (user.deactivatedAt) throw invalidCredential('Account is deactivated');
  return user;
}

// `iat` has whole seconds: a token issued in the same second as the revocation is kept, because
// it may be the new session the user signed in with right afterwards.
function revokedBefore(user: User, issuedAt: number): boolean {
  return user.sessionsRevokedAt !== null && issuedAt < Math.floor(user.sessionsRevokedAt.getTime() / 1000);
}

function unverifiedIssuer(token: string): string | undefined {
  try {
    return decodeJwt(token).iss;
  } catch {
    return undefined;
  }
}

/**
 * First sight of an OIDC subject creates its user. Only an email the issuer vouches for is used:
 * it links an existing password account with that email, or becomes the new user's address.
 * An unverified email is ignored (the user gets a placeholder address), so an identity provider
 * account can neither take over a local account nor keep its real owner from registering.
 */
export async function findOrCreateOidcUser(prisma: PrismaClient, identity: OidcIdentity, signupCreditsMicros: number): Promise<User> {
  const known = await prisma.user.findUnique({
    where: { oidcIssuer_oidcSubject: { oidcIssuer: identity.issuer, oidcSubject: identity.subject } },
  });
  if (known) return known;

  const email = (identity.emailVerified && identity.email?.trim().toLowerCase()) || syntheticEmail(identity);
  const existing = await prisma.user.findUnique({ where: { email } });
  if (existing) {
    // Unverified here means a placeholder address someone registered a password account with.
    if (!identity.emailVerified || existing.oidcSubject) {
      throw forbidden('An account with this email already exists; sign in with its password');
    }
    return prisma.user.update({
      where: { id: existing.id },
      data: { oidcIssuer: identity.issuer, oidcSubject: identity.subject },
    });
  }
  const name = (identity.name ?? email.split('@')[0] ?? 'user').slice(0, 100);
  try {
    return await createUserWithSignupCredits(
      prisma,
      { email, name, oidcIssuer: identity.issuer, oidcSubject: identity.subject },
      signupCreditsMicros,
    );
  } catch {
    // Two first requests raced; the other one created the user.
    return prisma.user.findUniqueOrThrow({
      where: { oidcIssuer_oidcSubject: { oidcIssuer: identity.issuer, oidcSubject: identity.subject } },
    });
  }
}

// Access tokens often carry no email; `.invalid` is a reserved TLD, so this never delivers mail.
function syntheticEmail(identity: OidcIdentity): string {
  const host = new URL(identity.issuer).hostname;
  return `${encodeURIComponent(identity.subject).toLowerCase()}@${host}.oidc.invalid`;
}
