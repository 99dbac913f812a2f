import type { Redis } from 'ioredis';
import type { Logger } from '../logger.js';

/**
 * A deployment (provider + upstream model, e.g. "anthropic/claude-sonnet-4") that keeps failing
 * is skipped for a while, then one caller probes it, and it is restored when it answers.
 * - HEALTHY: closed, no recent failure. DEGRADED: closed but failing lately, or open with a probe
 *   in flight. OPEN: skipped until its next probe.
 * - `admit` answers `closed` (call normally), `open` (skip it) or `probe` (it is open, its probe
 *   time has come and this caller holds the one probe slot: make exactly one attempt on it).
 */
export type CircuitState = 'HEALTHY' | 'DEGRADED' | 'OPEN';
export type Admission = 'closed' | 'probe' | 'open';

export interface CircuitSnapshot {
  key: string;
  state: CircuitState;
  consecutiveFailures: number;
  /** Ms since epoch, while open. */
  openedAt?: number;
  nextProbeAt?: number;
}

export interface CircuitBreaker {
  admit(key: string): Promise<Admission>;
  /** Closes the circuit and forgets its failures. */
  recordSuccess(key: string): Promise<void>;
  /** Counts a failure: opens the circuit at the threshold; while open, moves the next probe. */
  recordFailure(key: string): Promise<void>;
  snapshot(key: string): Promise<CircuitSnapshot>;
  /** Every deployment with something to report (HEALTHY ones without a record are left out). */
  snapshotAll(): Promise<CircuitSnapshot[]>;
}

export interface CircuitBreakerOptions {
  /** Shares the circuits among instances; without it they live in this process. */
  redis?: Redis;
  /** REDIS_KEY_PREFIX: keys are `${keyPrefix}circuit:${key}`. */
  keyPrefix: string;
  failureThreshold?: number;
  probeAfterMs?: number;
  /** How long a probe may take before its slot is given to another caller (its caller may have died). */
  probeTimeoutMs?: number;
  /** Bound on each Redis exchange; past it the instance answers from its own view. */
  redisTimeoutMs?: number;
  logger?: Logger;
  now?: () => number;
}

export const CIRCUIT_BREAKER_DEFAULTS = {
  failureThreshold: 3,
  probeAfterMs: 10_000,
  probeTimeoutMs: 60_000,
  redisTimeoutMs: 200,
};

/** A deployment not called for this long (past its probe times) starts afresh: failures count when recent. */
const FORGET_AFTER_MS = 10 * 60_000;
/** Reporting scans the keyspace: it may take longer than a request's exchange. */
const REPORT_TIMEOUT_FACTOR = 10;

/** What is kept per deployment; nothing at all for a healthy one. */
interface CircuitRecord {
  failures: number;
  openedAt?: number;
  nextProbeAt?: number;
  /** Until when the probe slot is taken. */
  probeUntil?: number;
}

/** A transition: from the current record and time, the next record and the caller's answer. */
type Change<T> = (record: CircuitRecord | undefined, now: number) => { next: CircuitRecord | undefined; result: T };

/** Where records live; it applies a change atomically. */
interface CircuitStore {
  update<T>(key: string, change: Change<T>): Promise<T>;
  read(key: string): Promise<CircuitRecord | undefined>;
  readAll(): Promise<Map<string, CircuitRecord>>;
}

export function createCircuitBreaker(options: CircuitBreakerOptions): CircuitBreaker {
  const defaults = CIRCUIT_BREAKER_DEFAULTS;
  const settings = {
    failureThreshold: options.failureThreshold ?? defaults.failureThreshold,
    probeAfterMs: options.probeAfterMs ?? defaults.probeAfterMs,
    probeTimeoutMs: options.probeTimeoutMs ?? defaults.probeTimeoutMs,
  };
  const now = options.now ?? Date.now;
  const local = new MemoryCircuitStore(now);
  const store = options.redis
    ? new RedisCircuitStore({ ...options, redis: options.redis, redisTimeoutMs: options.redisTimeoutMs ?? defaults.redisTimeoutMs, now, local })
    : local;

  // The rules, once for both stores.
  const admit: Change<Admission> = (record, at) => {
    if (record?.openedAt === undefined) return { next: record, result: 'closed' };
    if ((record.probeUntil ?? 0) > at || at < (record.nextProbeAt ?? 0)) return { next: record, result: 'open' };
    return { next: { ...record, probeUntil: at + settings.probeTimeoutMs }, result: 'probe' };
  };
  const succeed: Change<void> = () => ({ next: undefined, result: undefined });
  // A failure while open (a failed probe, or a call admitted before it opened) frees the probe
  // slot and moves the next probe: the deployment was seen failing just now.
  const fail: Change<void> = (record, at) => {
    const failures = (record?.failures ?? 0) + 1;
    const openedAt = record?.openedAt ?? (failures >= settings.failureThreshold ? at : undefined);
    const next = openedAt === undefined ? { failures } : { failures, openedAt, nextProbeAt: at + settings.probeAfterMs };
    return { next, result: undefined };
  };

  return {
    admit: (key) => store.update(key, admit),
    recordSuccess: (key) => store.update(key, succeed),
    recordFailure: (key) => store.update(key, fail),
    snapshot: async (key) => snapshotOf(key, await store.read(key), now()),
    snapshotAll: async () => {
      const records = await store.readAll();
      const at = now();
      return [...records].map(([key, record]) => snapshotOf(key, record, at)).sort((a, b) => a.key.localeCompare(b.key));
    },
  };
}

function snapshotOf(key: string, record: CircuitRecord | undefined, now: number): CircuitSnapshot {
  const consecutiveFailures = record?.failures ?? 0;
  if (record?.openedAt === undefined) return { key, state: consecutiveFailures > 0 ? 'DEGRADED' : 'HEALTHY', consecutiveFailures };
  const probing = (record.probeUntil ?? 0) > now;
  return { key, state: probing ? 'DEGRADED' : 'OPEN', consecutiveFailures, openedAt: record.openedAt, nextProbeAt: record.nextProbeAt };
}

/** How long a record matters: until its probe times have passed, and a while after. */
function lifetimeMs(record: CircuitRecord, now: number): number {
  return Math.max(record.nextProbeAt ?? now, record.probeUntil ?? now, now) - now + FORGET_AFTER_MS;
}

/** One process: the embedded default, and every instance's own view when Redis is away. */
class MemoryCircuitStore implements CircuitStore {
  private readonly records = new Map<string, { record: CircuitRecord; expiresAt: number }>();

  constructor(private readonly now: () => number) {}

  async update<T>(key: string, change: Change<T>): Promise<T> {
    const now = this.now();
    const { next, result } = change(this.get(key, now), now);
    this.put(key, next, now);
    return result;
  }

  async read(key: string): Promise<CircuitRecord | undefined> {
    return this.get(key, this.now());
  }

  async readAll(): Promise<Map<string, CircuitRecord>> {
    const now = this.now();
    const all = new Map<string, CircuitRecord>();
    for (const key of [...this.records.keys()]) {
      const record = this.get(key, now);
      if (record) all.set(key, record);
    }
    return all;
  }

  put(key: string, record: CircuitRecord | undefined, now: number): void {
    if (record) this.records.set(key, { record, expiresAt: now + lifetimeMs(record, now) });
    else this.records.delete(key);
  }

  private get(key: string, now: number): CircuitRecord | undefined {
    const entry = this.records.get(key);
    if (entry && entry.expiresAt <= now) this.records.delete(key);
    return entry && entry.expiresAt > now ? entry.record : undefined;
  }
}

// Writes `next` only if the key still holds what the change was computed from; else returns what
// it holds. The rules stay in TypeScript, and a shared connection needs no WATCH.
// ARGV: expected ('' for none), next ('' deletes), lifetime (ms).
const COMPARE_AND_SET = `
local current = redis.call('GET', KEYS[1]) or ''
if current ~= ARGV[1] then return {0, current} end
if ARGV[2] == '' then redis.call('DEL', KEYS[1]) else redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3]) end
return {1}`;

/**
 * Shared by every instance on the same Redis. Redis trouble never stalls or fails a chat request:
 * each exchange is bounded, and on any error the instance answers from its own view (the last
 * shared records it saw, plus its own outcomes since), which says `closed` for a deployment it
 * has no evidence against. Timestamps come from the caller's clock, never Redis TIME.
 */
class RedisCircuitStore implements CircuitStore {
  private readonly redis: Redis;
  private readonly keyPrefix: string;
  private readonly redisTimeoutMs: number;
  private readonly now: () => number;
  private readonly local: MemoryCircuitStore;
  private readonly logger?: Logger;
  private down = false;

  constructor(options: { redis: Redis; keyPrefix: string; redisTimeoutMs: number; now: () => number; local: MemoryCircuitStore; logger?: Logger }) {
    ({ redis: this.redis, keyPrefix: this.keyPrefix, redisTimeoutMs: this.redisTimeoutMs, now: this.now, local: this.local, logger: this.logger } = options);
  }

  update<T>(key: string, change: Change<T>): Promise<T> {
    return this.orLocal(this.redisTimeoutMs, (deadline) => this.updateShared(key, change, deadline), () => this.local.update(key, change));
  }

  read(key: string): Promise<CircuitRecord | undefined> {
    return this.orLocal(
      this.redisTimeoutMs,
      async () => {
        const record = parse((await this.redis.get(this.redisKey(key))) ?? '');
        this.local.put(key, record, this.now());
        return record;
      },
      () => this.local.read(key),
    );
  }

  readAll(): Promise<Map<string, CircuitRecord>> {
    return this.orLocal(this.redisTimeoutMs * REPORT_TIMEOUT_FACTOR, (deadline) => this.readAllShared(deadline), () => this.local.readAll());
  }

  private async updateShared<T>(key: string, change: Change<T>, deadline: number): Promise<T> {
    const redisKey = this.redisKey(key);
    let stored = (await this.redis.get(redisKey)) ?? '';
    for (;;) {
      const now = this.now();
      const { next, result } = change(parse(stored), now);
      const written = next ? JSON.stringify(next) : '';
      if (written !== stored) {
        // Once the caller has been answered from the local view, a late write (a probe slot nobody uses) would only mislead.
        if (Date.now() > deadline) throw new Error('gave up before writing the circuit record');
        const lifetime = next ? lifetimeMs(next, now) : 0;
        const [done, current] = (await this.redis.eval(COMPARE_AND_SET, 1, redisKey, stored, written, lifetime)) as [number, string?];
        if (!done) {
          // Another instance changed the record in between: compute again from what it wrote.
          stored = current ?? '';
          continue;
        }
      }
      this.local.put(key, next, now);
      return result;
    }
  }

  private async readAllShared(deadline: number): Promise<Map<string, CircuitRecord>> {
    const head = `${this.keyPrefix}circuit:`;
    const pattern = `${head.replace(/[*?[\]\\]/g, '\\$&')}*`;
    const keys: string[] = [];
    let cursor = '0';
    do {
      if (Date.now() > deadline) throw new Error('scanning the circuits took too long');
      const [nextCursor, batch] = await this.redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
      cursor = nextCursor;
      keys.push(...batch);
    } while (cursor !== '0');
    const values = keys.length > 0 ? await this.redis.mget(...keys) : [];
    const all = new Map<string, CircuitRecord>();
    keys.forEach((redisKey, i) => {
      const record = parse(values[i] ?? '');
      if (record) all.set(redisKey.slice(head.length), record);
    });
    return all;
  }

  /** Runs `shared` within `timeoutMs`; on any failure, logs the outage once and runs `fallback`. */
  private async orLocal<T>(timeoutMs: number, shared: (deadline: number) => Promise<T>, fallback: () => Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    try {
      // A client that is not connected would queue the command (or refuse it): do not wait for it.
      if (this.redis.status !== 'ready') throw new Error(`Redis connection is ${this.redis.status}`);
      const expired = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`Redis did not answer within ${timeoutMs} ms`)), timeoutMs);
      });
      const result = await Promise.race([shared(Date.now() + timeoutMs), expired]);
      if (this.down) {
        this.down = false;
        this.logger?.info('circuit breakers are shared through Redis again');
      }
      return result;
    } catch (error) {
      if (!this.down) {
        this.down = true;
        this.logger?.warn({ err: error }, 'circuit breakers not shared: Redis is unreachable, each instance judges deployments on its own');
      }
      return fallback();
    } finally {
      clearTimeout(timer);
    }
  }

  private redisKey(key: string): string {
    return `${this.keyPrefix}circuit:${key}`;
  }
}

function parse(stored: string): CircuitRecord | undefined {
  return stored === '' ? undefined : (JSON.parse(stored) as CircuitRecord);
}
