import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { createRateLimiter, type RateCheck } from '../src/rate-limit/limiter.js';
import { MemoryRateLimitStore, RedisRateLimitStore, type RateLimitStore } from '../src/rate-limit/store.js';
import { loadConfig } from '../src/config.js';
import { AppError } from '../src/errors.js';

const rules = loadConfig({ JWT_SECRET: 'p'.repeat(40), RATE_LIMIT_SEND_MESSAGE: '2/10s', RATE_LIMIT_OPERATIONS: '1500/1m' }).limits.rates;

function capturingLogger() {
  const lines: string[] = [];
  return { lines, logger: pino({ level: 'info' }, { write: (line: string) => lines.push(line) }) };
}

const redisUrl = process.env.REDIS_URL;
const redis = redisUrl ? new Redis(redisUrl, { enableAutoPipelining: true }) : undefined;
afterAll(() => redis?.quit());

const stores: [string, () => RateLimitStore][] = [
  ['in memory', () => new MemoryRateLimitStore()],
  ...(redis ? [['on Redis', () => new RedisRateLimitStore(redis, 'switchboard-test:')] as [string, () => RateLimitStore]] : []),
];

describe.each(stores)('rate limiter, counting %s', (_name, createStore) => {
  const { logger } = capturingLogger();
  // Each test counts for callers of its own, so runs never see each other's calls.
  const caller = () => `user:${randomUUID()}`;

  it('tells how long to wait: until the oldest counted call leaves the window', async () => {
    const limiter = createRateLimiter({ store: createStore(), rules, logger });
    const who = caller();
    const check: RateCheck[] = [{ rule: 'sendMessage', who, scope: 'sendMessage' }];
    await limiter.check(check);
    await limiter.check(check);
    const refused = await limiter.check(check).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(AppError);
    expect(refused).toMatchObject({ code: 'RATE_LIMITED', details: { retryAfter: 10 } });
    // Another caller, or another rule, has its own count.
    await limiter.check([{ rule: 'sendMessage', who: caller(), scope: 'sendMessage' }]);
    await limiter.check([{ rule: 'operations', who, scope: '*' }]);
  });

  it('enforces a limit of any size exactly, even with the calls all at once', async () => {
    const limiter = createRateLimiter({ store: createStore(), rules, logger });
    const check: RateCheck[] = [{ rule: 'operations', who: caller(), scope: '*' }];
    const outcomes = await Promise.allSettled(Array.from({ length: 1600 }, () => limiter.check(check)));
    expect(outcomes.filter((outcome) => outcome.status === 'fulfilled')).toHaveLength(1500);
  });

  it('keeps refusing a caller that keeps calling, with work and memory bounded by the limit', async () => {
    const store = createStore();
    const limiter = createRateLimiter({ store, rules, logger });
    const who = caller();
    const check: RateCheck[] = [{ rule: 'sendMessage', who, scope: 'sendMessage' }];
    const outcomes = await Promise.allSettled(Array.from({ length: 200 }, () => limiter.check(check)));
    expect(outcomes.filter((outcome) => outcome.status === 'fulfilled')).toHaveLength(2);
    // However many calls were refused, only `max` earlier calls come back to be counted.
    expect(await store.record(`sendMessage:${who}:sendMessage`, rules.sendMessage)).toBe(2);
    if (store instanceof RedisRateLimitStore) {
      expect(await redis!.zcard(`switchboard-test:ratelimit:sendMessage:${who}:sendMessage`)).toBe(2);
    }
  });
});

describe('rate limiter without its store', () => {
  it('serves requests, with a warning, when its store is unreachable', async () => {
    const { lines, logger } = capturingLogger();
    const down = new Error('connect ECONNREFUSED 127.0.0.1:6379');
    const store: RateLimitStore = {
      record: () => Promise.reject(down),
      freeAt: () => Promise.reject(down),
    };
    const limiter = createRateLimiter({ store, rules, logger });
    for (let i = 0; i < 5; i += 1) await limiter.check([{ rule: 'sendMessage', who: 'user:a', scope: 'sendMessage' }]);
    expect(lines.filter((line) => line.includes('rate limits not enforced'))).toHaveLength(1);
  });
});
