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

/** Failures are forgotten this long after the last one (or after the probe time): they count when recent. */
const FORGET_AFTER_MS = 10 * 60_000;
/** Reporting scans the keyspace: it gets this many times a request's bound. */
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
  readAll(): Promise<Map<string, CircuitRecord>>;
}

export function createCircuitBreaker(options: CircuitBreakerOptions): CircuitBreaker {
  const defaults = CIRCUIT_BREAKER_DEFAULTS;
  const { redis, keyPrefix, logger, now = Date.now } = options;
  const { failureThreshold = defaults.failureThreshold, probeAfterMs = defaults.probeAfterMs } = options;
  const { probeTimeoutMs = defaults.probeTimeoutMs, redisTimeoutMs = defaults.redisTimeoutMs } = options;
  const local = memoryCircuitStore(now);
  const store: CircuitStore = redis ? redisCircuitStore({ redis, keyPrefix, redisTimeoutMs, now, local, logger }) : local;

  // The rules, once for both stores.
  const admit: Change<Admission> = (record, at) => {
    if (record?.openedAt === undefined) return { next: record, result: 'closed' };
    if ((record.probeUntil ?? 0) > at || at < (record.nextProbeAt ?? 0)) return { next: record, result: 'open' };
    return { next: { ...record, probeUntil: at + probeTimeoutMs }, result: 'probe' };
  };
  const succeed: Change<void> = () => ({ next: undefined, result: undefined });
  const read: Change<CircuitRecord | undefined> = (record) => ({ next: record, result: record });
  // A failure while open (a failed probe, or a call admitted before it opened) frees the probe
  // slot and moves the next probe: the deployment was seen failing just now.
  const fail: Change<void> = (record, at) => {
    const failures = (record?.failures ?? 0) + 1;
    const openedAt = record?.openedAt ?? (failures >= failureThreshold ? at : undefined);
    const next = openedAt === undefined ? { failures } : { failures, openedAt, nextProbeAt: at + probeAfterMs };
    return { next, result: undefined };
  };

  return {
    admit: (key) => store.update(key, admit),
    recordSuccess: (key) => store.update(key, succeed),
    recordFailure: (key) => store.update(key, fail),
    snapshot: async (key) => snapshotOf(key, await store.update(key, read), now()),
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

/** One process: the embedded default, and each instance's own view when Redis is away. */
function memoryCircuitStore(now: () => number) {
  const records = new Map<string, { record: CircuitRecord; expiresAt: number }>();
  const get = (key: string, at: number) => {
    const entry = records.get(key);
    if (entry && entry.expiresAt <= at) records.delete(key);
    return entry && entry.expiresAt > at ? entry.record : undefined;
  };
  const put = (key: string, record: CircuitRecord | undefined, at: number) => {
    if (record) records.set(key, { record, expiresAt: at + lifetimeMs(record, at) });
    else records.delete(key);
  };
  return {
    put,
    async update<T>(key: string, change: Change<T>): Promise<T> {
      const at = now();
      const { next, result } = change(get(key, at), at);
      put(key, next, at);
      return result;
    },
    async readAll() {
      const at = now();
      const all = new Map<string, CircuitRecord>();
      for (const key of [...records.keys()]) {
        const record = get(key, at);
        if (record) all.set(key, record);
      }
      return all;
    },
  };
}

type MemoryCircuitStore = ReturnType<typeof memoryCircuitStore>;

// Writes the next record only if the key still holds the one it was computed from, else returns
// what it holds: the rules stay in TypeScript, and a shared connection needs no WATCH.
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
function redisCircuitStore(options: {
  redis: Redis;
  keyPrefix: string;
  redisTimeoutMs: number;
  now: () => number;
  local: MemoryCircuitStore;
  logger?: Logger;
}): CircuitStore {
  const { redis, keyPrefix, redisTimeoutMs, now, local, logger } = options;
  const head = `${keyPrefix}circuit:`;
  let down = false;

  /** Runs `shared` within `timeoutMs`; on any failure, logs the outage once and runs `fallback`. */
  async function orLocal<T>(timeoutMs: number, shared: (deadline: number) => Promise<T>, fallback: () => Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    try {
      // A client that is not connected would queue the command (or refuse it): no waiting for it.
      if (redis.status !== 'ready') throw new Error(`the Redis connection is ${redis.status}`);
      const expired = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`Redis did not answer within ${timeoutMs} ms`)), timeoutMs);
      });
      const result = await Promise.race([shared(Date.now() + timeoutMs), expired]);
      if (down) logger?.info('circuit breakers are shared through Redis again');
      down = false;
      return result;
    } catch (error) {
      if (!down) logger?.warn({ err: error }, 'circuit breakers not shared: Redis is unreachable, each instance judges deployments on its own');
      down = true;
      return fallback();
    } finally {
      clearTimeout(timer);
    }
  }

  async function updateShared<T>(key: string, change: Change<T>, deadline: number): Promise<T> {
    let stored = (await redis.get(head + key)) ?? '';
    for (;;) {
      const at = now();
      const { next, result } = change(parse(stored), at);
      const written = next ? JSON.stringify(next) : '';
      if (written !== stored) {
        // The caller, once answered from the local view, would never use a probe slot written late.
        if (Date.now() > deadline) throw new Error('gave up before writing the circuit record');
        const reply = (await redis.eval(COMPARE_AND_SET, 1, head + key, stored, written, next ? lifetimeMs(next, at) : 0)) as [number, string?];
        if (!reply[0]) {
          // Another instance changed the record in between: compute again from what it wrote.
          stored = reply[1] ?? '';
          continue;
        }
      }
      local.put(key, next, at);
      return result;
    }
  }

  async function readAllShared(deadline: number): Promise<Map<string, CircuitRecord>> {
    const pattern = `${head.replace(/[*?[\]\\]/g, '\\$&')}*`;
    const keys: string[] = [];
    let cursor = '0';
    do {
      if (Date.now() > deadline) throw new Error('scanning the circuit records took too long');
      const [nextCursor, batch] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
      cursor = nextCursor;
      keys.push(...batch);
    } while (cursor !== '0');
    const values = keys.length > 0 ? await redis.mget(...keys) : [];
    const all = new Map<string, CircuitRecord>();
    keys.forEach((redisKey, i) => {
      const record = parse(values[i] ?? '');
      if (record) all.set(redisKey.slice(head.length), record);
    });
    return all;
  }

  return {
    update: (key, change) => orLocal(redisTimeoutMs, (deadline) => updateShared(key, change, deadline), () => local.update(key, change)),
    readAll: () => orLocal(redisTimeoutMs * REPORT_TIMEOUT_FACTOR, readAllShared, local.readAll),
  };
}

function parse(stored: string): CircuitRecord | undefined {
  return stored === '' ? undefined : (JSON.parse(stored) as CircuitRecord);
}
