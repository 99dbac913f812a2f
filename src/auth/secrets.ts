import { createHash, randomBytes } from 'node:crypto';

/** A random opaque secret: `<prefix>_<43 base64url chars>` (256 bits). */
export function generateSecret(prefix: string): string {
  return `${prefix}_${randomBytes(32).toString('base64url')}`;
}

/**
 * sha256 is enough for 256-bit random secrets (nothing to brute-force), and lets the
 * database look a secret up by its hash through a unique index.
 */
export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}
