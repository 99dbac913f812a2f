import { randomUUID } from 'node:crypto';
import type { Identity, Store } from 'graphql-rate-limit';
import type { Redis } from 'ioredis';

/**
 * graphql-rate-limit reads an identity's timestamps, decides, then writes them back. Its own
 * stores do that as a plain GET and SET, so concurrent calls (a flood, or two instances) all read
 * the same count and all pass. These stores record the call in the read itself, atomically, so
 * each concurrent caller sees every call before it; the write only trims what left the window.
 * Every call counts, refused ones included: a client that keeps hammering stays refused, one
 * that waits `retryAfter` gets through.
 */
export interface RateLimitStore extends Store {
  /** Timestamps (ms) of the calls in the window, oldest first. */
  callsInWindow(identity: Identity, windowMs: number): Promise<number[]>;
}

/** At most this many earlier calls are read back: more than any limit needs, bounded under a flood. */
export const MAX_TRACKED_CALLS = 1000;

const keyOf = (identity: Identity) => `ratelimit:${identity.contextIdentity}:${identity.fieldIdentity}`;

// One round trip: read the latest calls, then record this one. ARGV: now, member, ttl, how many.
const RECORD_AND_READ = `
local previous = redis.call('ZRANGE', KEYS[1], -tonumber(ARGV[4]), -1, 'WITHSCORES')
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return previous`;

/** Shared by every instance on the same Redis: limits are cluster-wide. */
export class RedisRateLimitStore implements RateLimitStore {
  constructor(
    private readonly redis: Redis,
    /** Keys expire after the longest window of any rule. */
    private readonly maxWindowMs: number,
  ) {}

  async getForIdentity(identity: Identity): Promise<number[]> {
    const now = Date.now();
    const previous = (await this.redis.eval(
      RECORD_AND_READ,
      1,
      keyOf(identity),
      now,
      `${now}:${randomUUID()}`,
      this.maxWindowMs,
      MAX_TRACKED_CALLS,
    )) as string[];
    // WITHSCORES interleaves members and scores; the scores are the timestamps.
    return previous.filter((_, index) => index % 2 === 1).map(Number);
  }

  async setForIdentity(identity: Identity, _timestamps: readonly number[], windowMs?: number): Promise<void> {
    if (windowMs) await this.redis.zremrangebyscore(keyOf(identity), '-inf', Date.now() - windowMs);
  }

  async callsInWindow(identity: Identity, windowMs: number): Promise<number[]> {
    const members = await this.redis.zrangebyscore(keyOf(identity), Date.now() - windowMs, '+inf');
    return members.map((member) => Number(member.split(':')[0]));
  }
}

/** The same semantics in process memory, for the embedded default (one instance). */
export class MemoryRateLimitStore implements RateLimitStore {
  private readonly calls = new Map<string, number[]>();
  private untilSweep = SWEEP_EVERY_CALLS;

  constructor(private readonly maxWindowMs: number) {}

  getForIdentity(identity: Identity): number[] {
    const now = Date.now();
    if (--this.untilSweep === 0) this.sweep(now);
    const key = keyOf(identity);
    const calls = (this.calls.get(key) ?? []).filter((at) => at > now - this.maxWindowMs);
    const previous = calls.slice(-MAX_TRACKED_CALLS);
    calls.push(now);
    this.calls.set(key, calls);
    return previous;
  }

  setForIdentity(identity: Identity, _timestamps: readonly number[], windowMs?: number): void {
    const key = keyOf(identity);
    const since = Date.now() - (windowMs ?? this.maxWindowMs);
    const calls = (this.calls.get(key) ?? []).filter((at) => at > since);
    if (calls.length) this.calls.set(key, calls);
    else this.calls.delete(key);
  }

  async callsInWindow(identity: Identity, windowMs: number): Promise<number[]> {
    const since = Date.now() - windowMs;
    return (this.calls.get(keyOf(identity)) ?? []).filter((at) => at > since);
  }

  // Callers that never come back (a flood from many addresses) must not stay in memory.
  private sweep(now: number): void {
    this.untilSweep = SWEEP_EVERY_CALLS;
    for (const [key, calls] of this.calls) {
      if ((calls.at(-1) ?? 0) <= now - this.maxWindowMs) this.calls.delete(key);
    }
  }
}

const SWEEP_EVERY_CALLS = 10_000;
