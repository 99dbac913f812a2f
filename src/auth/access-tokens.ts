import { errors, jwtVerify, SignJWT } from 'jose';
import type { Config } from '../config.js';
import { invalidCredential } from '../errors.js';

// Pinned: tokens signed with any other algorithm (including "none") are refused.
const ALGORITHM = 'HS256';
// RFC 9068 type for access tokens, so an ID token or another JWT from the same key can't pass.
const TOKEN_TYPE = 'at+jwt';

export interface AccessTokenClaims {
  userId: string;
  /** `iat`, in whole seconds. */
  issuedAt: number;
  /** `exp`, in milliseconds since the epoch. */
  expiresAt: number;
}

export async function issueAccessToken(
  auth: Config['auth'],
  userId: string,
  now = new Date(),
): Promise<{ token: string; expiresAt: Date }> {
  const issuedAt = Math.floor(now.getTime() / 1000);
  const expiresAt = new Date((issuedAt + auth.accessTokenTtlSeconds) * 1000);
  const token = await new SignJWT({})
    .setProtectedHeader({ alg: ALGORITHM, typ: TOKEN_TYPE })
    .setSubject(userId)
    .setIssuer(auth.issuer)
    .setAudience(auth.audience)
    .setIssuedAt(issuedAt)
    .setExpirationTime(Math.floor(expiresAt.getTime() / 1000))
    .sign(auth.jwtSecret);
  return { token, expiresAt };
}

export async function verifyAccessToken(auth: Config['auth'], token: string): Promise<AccessTokenClaims> {
  try {
    const { payload } = await jwtVerify(token, auth.jwtSecret, {
      algorithms: [ALGORITHM],
      issuer: auth.issuer,
      audience: auth.audience,
      typ: TOKEN_TYPE,
      requiredClaims: ['sub', 'exp', 'iat'],
    });
    return { userId: payload.sub as string, issuedAt: payload.iat as number, expiresAt: (payload.exp as number) * 1000 };
  } catch (error) {
    if (error instanceof errors.JWTExpired) throw invalidCredential('Access token expired');
    throw invalidCredential('Invalid access token');
  }
}
