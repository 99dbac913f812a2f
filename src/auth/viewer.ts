import { decodeJwt } from 'jose';
import type { Config } from '../config.js';
import type { PrismaClient } from '../db/client.js';
import { AppError, unauthenticated } from '../errors.js';
import type { Role, User } from '../generated/prisma/client.js';
import { verifyAccessToken } from './access-tokens.js';
import { API_KEY_PREFIX, findActiveApiKey } from './api-keys.js';
import { createOidcVerifier, type OidcIdentity } from './oidc.js';

/** Who is making a request, and how they proved it. */
export interface Viewer {
  id: string;
  role: Role;
  via: 'access_token' | 'api_key' | 'oidc';
  apiKeyId?: string;
  /** The user's row as read when the request was authenticated. */
  user: User;
}

export type Authenticate = (authorization: string | null | undefined) => Promise<Viewer | null>;

export const MAX_CREDENTIAL_LENGTH = 8192;

/**
 * Turns an Authorization value into a Viewer. No credential means anonymous (null); a
 * credential that does not check out is an error, so clients know to sign in again.
 */
export function createAuthenticator(deps: { prisma: PrismaClient; config: Config }): Authenticate {
  const { prisma, config } = deps;
  const verifyOidc = config.oidc ? createOidcVerifier(config.oidc) : undefined;

  const activeUser = async (userId: string): Promise<User> => {
    const user = await prisma.user.findUnique({ where: { id: userId } });
    if (!user) throw unauthenticated('Account no longer exists');
    if (user.deactivatedAt) throw unauthenticated('Account is deactivated');
    return user;
  };

  return async (authorization) => {
    if (!authorization) return null;
    const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
    if (!match?.[1] || match[1].length > MAX_CREDENTIAL_LENGTH) {
      throw unauthenticated('Authorization must be "Bearer <token>"');
    }
    const credential = match[1];

    if (credential.startsWith(`${API_KEY_PREFIX}_`)) {
      const key = await findActiveApiKey(prisma, credential);
      if (!key) throw unauthenticated('API key is invalid or revoked');
      const user = await activeUser(key.userId);
      return { id: user.id, role: user.role, via: 'api_key', apiKeyId: key.id, user };
    }

    // The unverified issuer only chooses which verifier runs; each verifier checks everything.
    const issuer = unverifiedIssuer(credential);
    if (verifyOidc && config.oidc && issuer === config.oidc.issuer) {
      const user = await findOrCreateOidcUser(prisma, await verifyOidc(credential));
      if (user.deactivatedAt) throw unauthenticated('Account is deactivated');
      return { id: user.id, role: user.role, via: 'oidc', user };
    }
    const { userId } = await verifyAccessToken(config.auth, credential);
    const user = await activeUser(userId);
    return { id: user.id, role: user.role, via: 'access_token', user };
  };
}

function unverifiedIssuer(token: string): string | undefined {
  try {
    return decodeJwt(token).iss;
  } catch {
    return undefined;
  }
}

/**
 * First sight of an OIDC subject creates its user. An existing password account with the same
 * email is linked only when the issuer vouches for the email; otherwise it is refused, so that
 * an identity provider account cannot take over a local one.
 */
export async function findOrCreateOidcUser(prisma: PrismaClient, identity: OidcIdentity): Promise<User> {
  const known = await prisma.user.findUnique({
    where: { oidcIssuer_oidcSubject: { oidcIssuer: identity.issuer, oidcSubject: identity.subject } },
  });
  if (known) return known;

  const email = identity.email?.trim().toLowerCase() || syntheticEmail(identity);
  const existing = await prisma.user.findUnique({ where: { email } });
  if (existing) {
    if (!identity.emailVerified || existing.oidcSubject) {
      throw new AppError('FORBIDDEN', 'An account with this email already exists; sign in with its password');
    }
    return prisma.user.update({
      where: { id: existing.id },
      data: { oidcIssuer: identity.issuer, oidcSubject: identity.subject },
    });
  }
  const name = (identity.name ?? email.split('@')[0] ?? 'user').slice(0, 100);
  try {
    return await prisma.user.create({
      data: { email, name, oidcIssuer: identity.issuer, oidcSubject: identity.subject },
    });
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
