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

// One round trip: forget the calls older than the longest window, read the times of the latest
// ones (scores only: half the reply), then record this one. ARGV: now, member, ttl, how many.
const RECORD_AND_READ = `
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', tonumber(ARGV[1]) - tonumber(ARGV[3]))
local previous = redis.call('ZRANGE', KEYS[1], -tonumber(ARGV[4]), -1, 'WITHSCORES')
local times = {}
for i = 2, #previous, 2 do times[#times + 1] = previous[i] end
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return times`;

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
    return previous.map(Number);
  }

  // Old calls are forgotten as each call is recorded (above), in the same round trip.
  async setForIdentity(): Promise<void> {}

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
    let calls = this.calls.get(key) ?? [];
    // Only the latest MAX_TRACKED_CALLS are ever read: the list is cut back to them once it holds
    // twice as many, so each call costs the same however high a limit is set.
    if (calls.length >= 2 * MAX_TRACKED_CALLS) calls = calls.slice(-MAX_TRACKED_CALLS);
    calls.splice(0, firstAfter(calls, now - this.maxWindowMs));
    const previous = calls.slice(-MAX_TRACKED_CALLS);
    calls.push(now);
    this.calls.set(key, calls);
    return previous;
  }

  // Old calls are forgotten as each call is recorded (above).
  setForIdentity(): void {}

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
