import { createRemoteJWKSet, jwtVerify, type JWTPayload } from 'jose';
import type { Config } from '../config.js';
import { invalidCredential } from '../errors.js';

export interface OidcIdentity {
  issuer: string;
  subject: string;
  email?: string;
  emailVerified: boolean;
  name?: string;
  /** The token's `exp`, in milliseconds since the epoch. */
  expiresAt: number;
}

// Asymmetric algorithms only: an HS256 token "signed" with a public key must never pass.
const ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'ES256', 'ES384', 'EdDSA'];

export type OidcVerifier = (token: string) => Promise<OidcIdentity>;

/** Verifies JWTs from the configured issuer against its JWKS (fetched and cached by jose). */
export function createOidcVerifier(oidc: NonNullable<Config['oidc']>): OidcVerifier {
  const jwks = createRemoteJWKSet(new URL(oidc.jwksUrl), { timeoutDuration: 5000, cooldownDuration: 30_000 });
  return async (token) => {
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, jwks, {
        algorithms: ALGORITHMS,
        issuer: oidc.issuer,
        audience: oidc.audience,
        requiredClaims: ['sub', 'exp'],
      }));
    } catch {
      throw invalidCredential('Invalid identity token');
    }
    return {
      issuer: oidc.issuer,
      subject: payload.sub as string,
      email: typeof payload.email === 'string' ? payload.email : undefined,
      emailVerified: payload.email_verified === true,
      name: typeof payload.name === 'string' ? payload.name : undefined,
      expiresAt: (payload.exp as number) * 1000,
    };
  };
}
