import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import pLimit from 'p-limit';
import { AppError, badInput } from '../errors.js';

const KEY_LENGTH = 32;
const BLOCK_SIZE = 8;
const PARALLELISM = 1;
export const MIN_PASSWORD_LENGTH = 10;
// Hashing cost grows with length; a cap stops huge "passwords" from being a cheap DoS.
export const MAX_PASSWORD_LENGTH = 256;

export interface PasswordHasher {
  /** Hashes with scrypt; the parameters travel with the hash so the cost can be raised later. */
  hash(password: string, logN: number): Promise<string>;
  verify(password: string, stored: string): Promise<boolean>;
  /**
   * As slow as `verify`, for a login whose email has no account: both failures then take
   * equally long, so response time does not reveal which emails have accounts.
   */
  verifyUnknownAccount(password: string, logN: number): Promise<void>;
}

/**
 * Hashing is deliberately slow and runs on libuv's few threads, so each app bounds its own: at
 * most `concurrency` at once and `queue` waiting. A flood of sign-ins beyond that is refused at
 * once (RATE_LIMITED) instead of queueing ahead of everyone else's for tens of seconds.
 */
export function createPasswordHasher(limits: { concurrency: number; queue: number }): PasswordHasher {
  const run = pLimit(limits.concurrency);
  const scryptBounded = (password: string, salt: Buffer, options: ScryptOptions): Promise<Buffer> => {
    if (run.pendingCount >= limits.queue) {
      return Promise.reject(new AppError('RATE_LIMITED', 'Too many sign-ins in progress; retry shortly', { retryAfter: 1 }));
    }
    return run(
      () =>
        new Promise<Buffer>((resolve, reject) =>
          scrypt(password.normalize('NFKC'), salt, KEY_LENGTH, options, (err, key) => (err ? reject(err) : resolve(key))),
        ),
    );
  };
  const hash = async (password: string, logN: number) => {
    const salt = randomBytes(16);
    const key = await scryptBounded(password, salt, scryptOptions(logN));
    return `scrypt$${logN}$${salt.toString('base64url')}$${key.toString('base64url')}`;
  };
  const verify = async (password: string, stored: string) => {
    const [scheme, logN, salt, key] = stored.split('$');
    if (scheme !== 'scrypt' || !logN || !salt || !key) return false;
    const expected = Buffer.from(key, 'base64url');
    const actual = await scryptBounded(password, Buffer.from(salt, 'base64url'), scryptOptions(Number(logN)));
    return actual.length === expected.length && timingSafeEqual(actual, expected);
  };
  // One stand-in hash per cost; a refused attempt (RATE_LIMITED) is not kept.
  const standIns = new Map<number, Promise<string>>();
  const standInFor = (logN: number) => {
    let standIn = standIns.get(logN);
    if (!standIn) {
      standIn = hash('not-a-real-password', logN);
      standIns.set(logN, standIn);
      standIn.catch(() => standIns.delete(logN));
    }
    return standIn;
  };
  return {
    hash,
    verify,
    async verifyUnknownAccount(password, logN) {
      await verify(password, await standInFor(logN));
    },
  };
}

function scryptOptions(logN: number): ScryptOptions {
  const N = 2 ** logN;
  // scrypt needs 128 * N * r bytes; Node refuses above maxmem, so size it to the cost.
  return { N, r: BLOCK_SIZE, p: PARALLELISM, maxmem: 256 * N * BLOCK_SIZE };
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
