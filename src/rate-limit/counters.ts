import type { Redis } from 'ioredis';
import { RateLimiterMemory, RateLimiterRedis, type RateLimiterAbstract } from 'rate-limiter-flexible';
import type { RateRule } from '../config.js';

type CounterOptions = ConstructorParameters<typeof RateLimiterMemory>[0];

export interface RedisCounters {
  client: Redis;
  /** Starts every key (REDIS_KEY_PREFIX), so deployments sharing a Redis count apart. */
  keyPrefix: string;
}

/**
 * The calls of each caller under one rule, counted with rate-limiter-flexible over fixed windows:
 * one counter per key (in Redis, an INCR that sets the window's expiry, atomic in one round trip),
 * so a check costs the same whatever the limit. Refused calls count too.
 *
 * On Redis, the counts are shared by every instance. While Redis is unreachable, each instance
 * counts in its own memory (`onRedisDown` is told): stricter than not counting at all.
 */
export function countersFor(ruleName: string, rule: RateRule, redis: RedisCounters | undefined, onRedisDown: () => void): RateLimiterAbstract {
  const options: CounterOptions = { points: rule.max, duration: rule.windowMs / 1000 };
  if (!redis) return new RateLimiterMemory(options);
  return new RateLimiterRedis({
    ...options,
    storeClient: redis.client,
    keyPrefix: `${redis.keyPrefix}ratelimit:${ruleName}`,
    insuranceLimiter: new InsuranceCounters(options, onRedisDown),
  });
}

/** Memory counters that say when they are used: the library turns to them only when Redis failed. */
class InsuranceCounters extends RateLimiterMemory {
  constructor(
    options: CounterOptions,
    private readonly onUse: () => void,
  ) {
    super(options);
  }

  override consume(...args: Parameters<RateLimiterMemory['consume']>) {
    this.onUse();
    return super.consume(...args);
  }
}
