import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { loadConfig } from '../src/config.js';
import { AppError } from '../src/errors.js';
import { countersFor, type RedisCounters } from '../src/rate-limit/counters.js';
import { createRateLimiter, type RateCheck } from '../src/rate-limit/limiter.js';

const rules = loadConfig({
  JWT_SECRET: 'p'.repeat(40),
  RATE_LIMIT_SEND_MESSAGE: '2/10s',
  RATE_LIMIT_OPERATIONS: '1500/1m',
  RATE_LIMIT_LOGIN_PER_ACCOUNT: '1/15m',
}).limits.rates;

function capturingLogger() {
  const lines: string[] = [];
  return { lines, logger: pino({ level: 'info' }, { write: (line: string) => lines.push(line) }) };
}

const redisUrl = process.env.REDIS_URL;
const redis = redisUrl ? new Redis(redisUrl, { enableAutoPipelining: true }) : undefined;
afterAll(() => redis?.quit());
afterEach(() => void vi.useRealTimers());
const keyPrefix = 'switchboard-test:';

const stores: [string, RedisCounters | undefined][] = [
  ['in memory', undefined],
  ...(redis ? [['on Redis', { client: redis, keyPrefix }] as [string, RedisCounters]] : []),
];

const refusalOf = (promise: Promise<void>) => promise.then(() => undefined).catch((error: unknown) => error);

describe.each(stores)('rate limiter, counting %s', (_name, onRedis) => {
  const { logger } = capturingLogger();
  // Each test counts for callers of its own, so runs never see each other's calls.
  const caller = () => `user:${randomUUID()}`;
  const createLimiter = () => createRateLimiter({ rules, logger, redis: onRedis });

  it('tells how long to wait: until the window ends, counted from its first call', async () => {
    const limiter = createLimiter();
    const who = caller();
    const check: RateCheck[] = [{ rule: 'sendMessage', who, scope: 'sendMessage' }];
    await limiter.check(check);
    await limiter.check(check);
    const refused = await refusalOf(limiter.check(check));
    expect(refused).toBeInstanceOf(AppError);
    expect(refused).toMatchObject({ code: 'RATE_LIMITED', details: { retryAfter: 10 } });
    // Another caller, or another rule, has its own count.
    await limiter.check([{ rule: 'sendMessage', who: caller(), scope: 'sendMessage' }]);
    await limiter.check([{ rule: 'operations', who, scope: '*' }]);
  });

  it('lets a caller that waited retryAfter through', async () => {
    const limiter = createLimiter();
    const who = caller();
    const check: RateCheck[] = [{ rule: 'sendMessage', who, scope: 'sendMessage' }];
    const refusals = await Promise.all(Array.from({ length: 5 }, () => refusalOf(limiter.check(check))));
    const { retryAfter } = (refusals.find(Boolean) as AppError).details as { retryAfter: number };
    if (onRedis) {
      // Redis forgets the count by then (its clock cannot be moved forward).
      expect(await redis!.pttl(`${keyPrefix}ratelimit:sendMessage:sendMessage:${who}`)).toBeLessThanOrEqual(retryAfter * 1000);
    } else {
      vi.useFakeTimers({ toFake: ['Date'] });
      vi.setSystemTime(Date.now() + retryAfter * 1000);
      await limiter.check(check);
    }
  });

  it('refuses with the longest wait when a call is over several limits', async () => {
    const limiter = createLimiter();
    const who = caller();
    const checks: RateCheck[] = [
      { rule: 'sendMessage', who, scope: 'sendMessage' },
      { rule: 'loginPerAccount', who, scope: 'login' },
    ];
    await limiter.check(checks);
    await refusalOf(limiter.check(checks));
    // Over both now: waiting for the 10 s window alone would not be enough.
    expect(await refusalOf(limiter.check(checks))).toMatchObject({ details: { retryAfter: 15 * 60 } });
  });

  it('enforces a limit of any size exactly, even with the calls all at once', async () => {
    const limiter = createLimiter();
    const check: RateCheck[] = [{ rule: 'operations', who: caller(), scope: '*' }];
    const outcomes = await Promise.allSettled(Array.from({ length: 1600 }, () => limiter.check(check)));
    expect(outcomes.filter((outcome) => outcome.status === 'fulfilled')).toHaveLength(1500);
  });

  it('keeps refusing a caller that keeps calling, counting every call in one number', async () => {
    const limiter = createLimiter();
    const who = caller();
    const check: RateCheck[] = [{ rule: 'sendMessage', who, scope: 'sendMessage' }];
    const outcomes = await Promise.allSettled(Array.from({ length: 200 }, () => limiter.check(check)));
    expect(outcomes.filter((outcome) => outcome.status === 'fulfilled')).toHaveLength(2);
    for (let i = 0; i < 10; i += 1) expect(await refusalOf(limiter.check(check))).toBeInstanceOf(AppError);
    if (onRedis) {
      const key = `${keyPrefix}ratelimit:sendMessage:sendMessage:${who}`;
      expect([await redis!.type(key), await redis!.get(key)]).toEqual(['string', '210']);
    }
  });
});

describe('rate limiter in memory', () => {
  const { logger } = capturingLogger();

  it('counts apart for each app: two limiters in one process share nothing', async () => {
    const check: RateCheck[] = [{ rule: 'sendMessage', who: 'user:a', scope: 'sendMessage' }];
    const first = createRateLimiter({ rules, logger });
    for (let i = 0; i < 2; i += 1) await first.check(check);
    expect(await refusalOf(first.check(check))).toBeInstanceOf(AppError);
    await createRateLimiter({ rules, logger }).check(check);
  });

  it('forgets the callers whose window is over, so a flood from many addresses does not stay in memory', () => {
    vi.useFakeTimers();
    const counters = countersFor('authPerIp', { max: 3, window: '1s', windowMs: 1000 }, undefined, () => {});
    for (let i = 0; i < 1000; i += 1) void counters.consume(`auth:ip:10.0.${i >> 8}.${i & 255}`);
    expect((counters as unknown as { dump(): { storage: unknown[] } }).dump().storage).toHaveLength(1000);
    vi.advanceTimersByTime(1000);
    expect((counters as unknown as { dump(): { storage: unknown[] } }).dump().storage).toHaveLength(0);
  });
});

describe('rate limiter while Redis is unreachable', () => {
  it('counts in this instance alone, with a warning a minute', async () => {
    const { lines, logger } = capturingLogger();
    // Never connected, and refusing commands at once, as the app's rate-limit client does.
    const unreachable = new Redis({ lazyConnect: true, enableOfflineQueue: false });
    unreachable.disconnect();
    const limiter = createRateLimiter({ rules, logger, redis: { client: unreachable, keyPrefix } });
    const check: RateCheck[] = [{ rule: 'sendMessage', who: 'user:a', scope: 'sendMessage' }];
    await limiter.check(check);
    await limiter.check(check);
    const refusals = await Promise.all(Array.from({ length: 3 }, () => refusalOf(limiter.check(check))));
    expect(refusals).toEqual(Array(3).fill(expect.objectContaining({ code: 'RATE_LIMITED' })));
    expect(lines.filter((line) => line.includes('Redis is unreachable'))).toHaveLength(1);
  });
});
