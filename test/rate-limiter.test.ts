import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { createRateLimiter } from '../src/rate-limit/limiter.js';
import { MemoryRateLimitStore, type RateLimitStore } from '../src/rate-limit/store.js';
import { loadConfig } from '../src/config.js';
import { AppError } from '../src/errors.js';

const rules = loadConfig({ JWT_SECRET: 'p'.repeat(40), RATE_LIMIT_SEND_MESSAGE: '2/10s' }).limits.rates;

function capturingLogger() {
  const lines: string[] = [];
  return { lines, logger: pino({ level: 'info' }, { write: (line: string) => lines.push(line) }) };
}

describe('rate limiter', () => {
  it('tells how long to wait: until the oldest counted call leaves the window', async () => {
    const { logger } = capturingLogger();
    const limiter = createRateLimiter({ store: new MemoryRateLimitStore(60_000), rules, logger });
    const check = [{ rule: 'sendMessage' as const, who: 'user:a', scope: 'sendMessage' }];
    await limiter.check(check);
    await limiter.check(check);
    const refused = await limiter.check(check).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(AppError);
    expect(refused).toMatchObject({ code: 'RATE_LIMITED', details: { retryAfter: 10 } });
    // Another caller, or another rule, has its own count.
    await limiter.check([{ rule: 'sendMessage', who: 'user:b', scope: 'sendMessage' }]);
  });

  it('serves requests, with a warning, when its store is unreachable', async () => {
    const { lines, logger } = capturingLogger();
    const down = new Error('connect ECONNREFUSED 127.0.0.1:6379');
    const store: RateLimitStore = {
      getForIdentity: () => Promise.reject(down),
      setForIdentity: () => Promise.reject(down),
      callsInWindow: () => Promise.reject(down),
    };
    const limiter = createRateLimiter({ store, rules, logger });
    for (let i = 0; i < 5; i += 1) await limiter.check([{ rule: 'sendMessage', who: 'user:a', scope: 'sendMessage' }]);
    expect(lines.filter((line) => line.includes('rate limits not enforced'))).toHaveLength(1);
  });
});
