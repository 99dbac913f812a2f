import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { RateRule } from '../config.js';

/**
 * Where the calls of each caller under each rule are kept. graphql-rate-limit's own stores read
 * the timestamps with a plain GET, decide, and SET them back, so concurrent calls (a flood, or two
 * instances) all read the same count and all pass. These stores record the call in the read
 * itself, atomically, so each concurrent caller sees every call before it.
 *
 * Every call counts, refused ones included: a client that keeps hammering stays refused, one that
 * waits `retryAfter` gets through. Only the latest `max` calls of a key are kept: they are all a
 * decision needs, so neither the work per call nor the memory grows with a flood.
 */
export interface RateLimitStore {
  /** Records a call and returns how many earlier calls are in the rule's window (at most `rule.max`). */
  record(key: string, rule: RateRule): Promise<number> | number;
  /** When (ms since epoch) the oldest call that keeps the key at its limit leaves the window. */
  freeAt(key: string, rule: RateRule): Promise<number | undefined> | number | undefined;
}

// One round trip: forget the calls that left the window, count the rest, record this one, and
// keep only the latest `max`. ARGV: now, member, window (ms), max.
const RECORD_AND_COUNT = `
local now, window, max = tonumber(ARGV[1]), tonumber(ARGV[3]), tonumber(ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local earlier = redis.call('ZCARD', KEYS[1])
redis.call('ZADD', KEYS[1], now, ARGV[2])
redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -(max + 1))
redis.call('PEXPIRE', KEYS[1], window)
return math.min(earlier, max)`;

/** Shared by every instance on the same Redis: limits are cluster-wide. */
export class RedisRateLimitStore implements RateLimitStore {
  /** `keyPrefix` starts every key (REDIS_KEY_PREFIX), so deployments sharing a Redis count apart. */
  constructor(
    private readonly redis: Redis,
    private readonly keyPrefix: string,
  ) {}

  async record(key: string, rule: RateRule): Promise<number> {
    const now = Date.now();
    const member = `${now}:${randomUUID()}`;
    return (await this.redis.eval(RECORD_AND_COUNT, 1, this.redisKey(key), now, member, rule.windowMs, rule.max)) as number;
  }

  async freeAt(key: string, rule: RateRule): Promise<number | undefined> {
    const [, oldest] = await this.redis.zrangebyscore(this.redisKey(key), Date.now() - rule.windowMs, '+inf', 'WITHSCORES', 'LIMIT', 0, 1);
    return oldest === undefined ? undefined : Number(oldest);
  }

  private redisKey(key: string): string {
    return `${this.keyPrefix}ratelimit:${key}`;
  }
}

/** The same semantics in process memory, for the embedded default (one instance). */
export class MemoryRateLimitStore implements RateLimitStore {
  private readonly calls = new Map<string, { times: number[]; windowMs: number }>();
  private untilSweep = SWEEP_EVERY_CALLS;

  record(key: string, rule: RateRule): number {
    const now = Date.now();
    if (--this.untilSweep === 0) this.sweep(now);
    const entry = this.calls.get(key) ?? { times: [], windowMs: rule.windowMs };
    this.calls.set(key, entry);
    const firstCounted = this.firstCounted(entry.times, rule, now);
    const earlier = entry.times.length - firstCounted;
    entry.times.push(now);
    // What no longer counts is dropped once it is half the list: constant work per call on average.
    const keepFrom = Math.max(firstCounted, entry.times.length - rule.max);
    if (keepFrom * 2 >= entry.times.length) entry.times.splice(0, keepFrom);
    return earlier;
  }

  freeAt(key: string, rule: RateRule): number | undefined {
    const times = this.calls.get(key)?.times ?? [];
    return times[this.firstCounted(times, rule, Date.now())];
  }

  /** Index of the oldest call that still counts: inside the window, and among the latest `max`. */
  private firstCounted(times: number[], rule: RateRule, now: number): number {
    return Math.max(firstAfter(times, now - rule.windowMs), times.length - rule.max);
  }

  // Callers that never come back (a flood from many addresses) must not stay in memory.
  private sweep(now: number): void {
    this.untilSweep = SWEEP_EVERY_CALLS;
    for (const [key, { times, windowMs }] of this.calls) {
      if ((times.at(-1) ?? 0) <= now - windowMs) this.calls.delete(key);
    }
  }
}

const SWEEP_EVERY_CALLS = 10_000;

/** Index of the first time after `since` in an ascending list (binary search). */
function firstAfter(times: number[], since: number): number {
  let low = 0;
  let high = times.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (times[middle]! > since) high = middle;
    else low = middle + 1;
  }
  return low;
}
