import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import pLimit, { type LimitFunction } from 'p-limit';
import { AppError, badInput } from '../errors.js';

const KEY_LENGTH = 32;
const BLOCK_SIZE = 8;
const PARALLELISM = 1;
export const MIN_PASSWORD_LENGTH = 10;
// Hashing cost grows with length; a cap stops huge "passwords" from being a cheap DoS.
export const MAX_PASSWORD_LENGTH = 256;

/**
 * Hashing is deliberately slow and runs on libuv's few threads, so it is bounded process-wide:
 * at most `concurrency` at once and `queue` waiting. A flood of sign-ins beyond that is refused
 * at once (RATE_LIMITED) instead of queueing ahead of everyone else's for tens of seconds.
 */
let gate: { run: LimitFunction; queue: number } = { run: pLimit(2), queue: 8 };

export function boundPasswordHashing(options: { concurrency: number; queue: number }): void {
  gate = { run: pLimit(options.concurrency), queue: options.queue };
}

function scryptAsync(password: string, salt: Buffer, options: ScryptOptions): Promise<Buffer> {
  if (gate.run.pendingCount >= gate.queue) {
    return Promise.reject(new AppError('RATE_LIMITED', 'Too many sign-ins in progress; retry shortly', { retryAfter: 1 }));
  }
  return gate.run(
    () =>
      new Promise<Buffer>((resolve, reject) =>
        scrypt(password.normalize('NFKC'), salt, KEY_LENGTH, options, (err, key) => (err ? reject(err) : resolve(key))),
      ),
  );
}

function options(logN: number): ScryptOptions {
  const N = 2 ** logN;
  // scrypt needs 128 * N * r bytes; Node refuses above maxmem, so size it to the cost.
  return { N, r: BLOCK_SIZE, p: PARALLELISM, maxmem: 256 * N * BLOCK_SIZE };
}

/** Hashes with scrypt; the parameters travel with the hash so the cost can be raised later. */
export async function hashPassword(password: string, logN: number): Promise<string> {
  const salt = randomBytes(16);
  const key = await scryptAsync(password, salt, options(logN));
  return `scrypt$${logN}$${salt.toString('base64url')}$${key.toString('base64url')}`;
}

export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const [scheme, logN, salt, key] = stored.split('$');
  if (scheme !== 'scrypt' || !logN || !salt || !key) return false;
  const expected = Buffer.from(key, 'base64url');
  const actual = await scryptAsync(password, Buffer.from(salt, 'base64url'), options(Number(logN)));
  return actual.length === expected.length && timingSafeEqual(actual, expected);
}

const commonPasswords = new Set([
  'password', 'password1', 'password123', '1234567890', '12345678910', 'qwertyuiop', 'iloveyou12',
  'letmein123', 'welcome123', 'administrator', 'changeme123', 'qwerty1234', 'abcdefghij',
]);

/** Length plus a small blocklist and a variety check, as NIST SP 800-63B suggests (no composition rules). */
export function assertStrongPassword(password: string, email: string): void {
  if (password.length < MIN_PASSWORD_LENGTH) {
    throw badInput(`Password must be at least ${MIN_PASSWORD_LENGTH} characters`, 'password');
  }
  if (password.length > MAX_PASSWORD_LENGTH) {
    throw badInput(`Password must be at most ${MAX_PASSWORD_LENGTH} characters`, 'password');
  }
  const lower = password.toLowerCase();
  const localPart = email.split('@')[0]?.toLowerCase() ?? '';
  if (new Set(password).size < 5 || commonPasswords.has(lower) || (localPart.length >= 4 && lower.includes(localPart))) {
    throw badInput('Password is too easy to guess', 'password');
  }
}
