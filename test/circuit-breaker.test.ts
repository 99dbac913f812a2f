import { randomUUID } from 'node:crypto';
import { createServer, type Socket } from 'node:net';
import { Redis, type RedisOptions } from 'ioredis';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { createCircuitBreaker, type CircuitBreaker } from '../src/providers/circuit-breaker.js';
import { registerLeftover } from './helpers/leftovers.js';
import { freePort, startRedisServer } from './helpers/own-services.js';
import { waitFor } from './helpers/wait.js';
import { skipping } from './helpers/skips.js';

const redisUrl = process.env.REDIS_URL;

/** A clock the test moves by hand. */
function testClock() {
  let time = Date.UTC(2025, 0, 1);
  return { now: () => time, advance: (ms: number) => void (time += ms) };
}

function capturingLogger() {
  const lines: { level: number; msg: string }[] = [];
  return { lines, logger: pino({ level: 'info' }, { write: (line: string) => lines.push(JSON.parse(line) as { level: number; msg: string }) }) };
}

async function failTimes(breaker: CircuitBreaker, key: string, times: number) {
  for (let i = 0; i < times; i += 1) await breaker.recordFailure(key);
}

/** An ioredis client, disconnected when the test ends whatever happened to its server. */
function redisClient(url: string, options: RedisOptions = {}): Redis {
  const client = new Redis(url, { disableClientInfo: true, ...options });
  client.on('error', () => {});
  registerLeftover(() => client.disconnect());
  return client;
}

/** Connected first, as the app's clients are before it serves: a client not ready is taken for Redis being away. */
async function readyRedisClient(url: string, options: RedisOptions = {}): Promise<Redis> {
  const client = redisClient(url, options);
  await new Promise((resolve) => client.once('ready', resolve));
  return client;
}

describe('circuit breaker, in one process', () => {
  const key = 'anthropic/claude-sonnet-4';
  const create = (clock = testClock()) => ({ clock, breaker: createCircuitBreaker({ keyPrefix: 'unused:', now: clock.now }) });

  it('opens after three consecutive failures, and says so while open', async () => {
    const { breaker } = create();
    expect(await breaker.snapshot(key)).toEqual({ key, state: 'HEALTHY', consecutiveFailures: 0 });
    await failTimes(breaker, key, 2);
    expect(await breaker.admit(key)).toBe('closed');
    expect(await breaker.snapshot(key)).toMatchObject({ state: 'DEGRADED', consecutiveFailures: 2 });
    await breaker.recordFailure(key);
    expect(await breaker.admit(key)).toBe('open');
    expect(await breaker.admit(key)).toBe('open');
    expect(await breaker.snapshot(key)).toMatchObject({ state: 'OPEN', consecutiveFailures: 3 });
    // Other deployments are not affected.
    expect(await breaker.admit('openai/gpt-4o')).toBe('closed');
  });

  it('starts counting again after a success', async () => {
    const { breaker } = create();
    await failTimes(breaker, key, 2);
    await breaker.recordSuccess(key);
    expect(await breaker.snapshot(key)).toMatchObject({ state: 'HEALTHY', consecutiveFailures: 0 });
    await failTimes(breaker, key, 2);
    expect(await breaker.admit(key)).toBe('closed');
  });

  it('lets exactly one caller probe once probeAfterMs has passed', async () => {
    const { breaker, clock } = create();
    await failTimes(breaker, key, 3);
    const openedAt = clock.now();
    expect(await breaker.snapshot(key)).toEqual({ key, state: 'OPEN', consecutiveFailures: 3, openedAt, nextProbeAt: openedAt + 10_000 });
    clock.advance(9_999);
    expect(await breaker.admit(key)).toBe('open');
    clock.advance(1);
    const answers = await Promise.all(Array.from({ length: 5 }, () => breaker.admit(key)));
    expect(answers.sort()).toEqual(['open', 'open', 'open', 'open', 'probe']);
    expect(await breaker.snapshot(key)).toMatchObject({ state: 'DEGRADED', openedAt });
  });

  it('closes when the probe succeeds', async () => {
    const { breaker, clock } = create();
    await failTimes(breaker, key, 3);
    clock.advance(10_000);
    expect(await breaker.admit(key)).toBe('probe');
    await breaker.recordSuccess(key);
    expect(await breaker.admit(key)).toBe('closed');
    expect(await breaker.snapshot(key)).toEqual({ key, state: 'HEALTHY', consecutiveFailures: 0 });
  });

  it('stays open when the probe fails, and probes again probeAfterMs later', async () => {
    const { breaker, clock } = create();
    await failTimes(breaker, key, 3);
    const openedAt = clock.now();
    clock.advance(12_000);
    expect(await breaker.admit(key)).toBe('probe');
    clock.advance(500);
    await breaker.recordFailure(key);
    expect(await breaker.snapshot(key)).toEqual({ key, state: 'OPEN', consecutiveFailures: 4, openedAt, nextProbeAt: clock.now() + 10_000 });
    clock.advance(9_999);
    expect(await breaker.admit(key)).toBe('open');
    clock.advance(1);
    expect(await breaker.admit(key)).toBe('probe');
  });

  it('gives the probe slot to another caller when the probe never reports back', async () => {
    const clock = testClock();
    const breaker = createCircuitBreaker({ keyPrefix: 'unused:', now: clock.now, probeAfterMs: 1_000, probeTimeoutMs: 30_000 });
    await failTimes(breaker, key, 3);
    clock.advance(1_000);
    expect(await breaker.admit(key)).toBe('probe');
    clock.advance(29_999);
    expect(await breaker.admit(key)).toBe('open');
    clock.advance(1);
    expect(await breaker.snapshot(key)).toMatchObject({ state: 'OPEN' });
    expect(await breaker.admit(key)).toBe('probe');
    expect(await breaker.admit(key)).toBe('open');
  });

  it('forgets failures that are no longer recent', async () => {
    const { breaker, clock } = create();
    await failTimes(breaker, key, 2);
    clock.advance(10 * 60_000);
    expect(await breaker.snapshotAll()).toEqual([]);
    await breaker.recordFailure(key);
    expect(await breaker.admit(key)).toBe('closed');
  });

  it('reports every deployment with a record', async () => {
    const { breaker } = create();
    await failTimes(breaker, 'b/model', 3);
    await breaker.recordFailure('a/model');
    await breaker.recordSuccess('c/model');
    expect((await breaker.snapshotAll()).map(({ key: k, state }) => [k, state])).toEqual([
      ['a/model', 'DEGRADED'],
      ['b/model', 'OPEN'],
    ]);
  });
});

describe.skipIf(skipping(!redisUrl, 'the circuit breaker shared through Redis: needs REDIS_URL'))('circuit breaker, shared through Redis', () => {
  const key = 'anthropic/claude-sonnet-4';

  /** Two instances (two clients) on one unique prefix, with one clock; their keys are removed at the end. */
  async function twoInstances() {
    const clock = testClock();
    const keyPrefix = `breaker-test-${randomUUID().slice(0, 8)}:`;
    const clients = [await readyRedisClient(redisUrl!), await readyRedisClient(redisUrl!)] as const;
    registerLeftover(async () => {
      const keys = await scanKeys(clients[0], `${keyPrefix}*`);
      if (keys.length > 0) await clients[0].del(...keys);
    });
    const [a, b] = clients.map((redis) => createCircuitBreaker({ redis, keyPrefix, now: clock.now })) as [CircuitBreaker, CircuitBreaker];
    return { a, b, clock, keyPrefix, redis: clients[0] };
  }

  it('opens for every instance on failures recorded by one', async () => {
    const { a, b } = await twoInstances();
    await a.recordFailure(key);
    await b.recordFailure(key);
    expect(await a.admit(key)).toBe('closed');
    await a.recordFailure(key);
    expect(await b.admit(key)).toBe('open');
    expect(await b.snapshot(key)).toMatchObject({ state: 'OPEN', consecutiveFailures: 3 });
  });

  it('gives the probe to only one instance, and a success on the other closes it for both', async () => {
    const { a, b, clock } = await twoInstances();
    await failTimes(a, key, 3);
    clock.advance(10_000);
    const answers = await Promise.all([a, b, a, b, a, b].map((breaker) => breaker.admit(key)));
    expect(answers.filter((answer) => answer === 'probe')).toHaveLength(1);
    expect(await a.snapshot(key)).toMatchObject({ state: 'DEGRADED' });
    await b.recordSuccess(key);
    expect(await a.admit(key)).toBe('closed');
    expect(await a.snapshot(key)).toEqual({ key, state: 'HEALTHY', consecutiveFailures: 0 });
  });

  it('keeps its keys under the prefix, each with an expiry', async () => {
    const { a, keyPrefix, redis } = await twoInstances();
    await failTimes(a, key, 3);
    await a.recordFailure('openai/gpt-4o');
    const keys = await scanKeys(redis, `${keyPrefix}*`);
    expect(keys.sort()).toEqual([`${keyPrefix}circuit:${key}`, `${keyPrefix}circuit:openai/gpt-4o`]);
    for (const redisKey of keys) expect(await redis.pttl(redisKey)).toBeGreaterThan(0);
    expect((await a.snapshotAll()).map((snapshot) => snapshot.key)).toEqual([key, 'openai/gpt-4o']);
    // A closed circuit leaves nothing behind.
    await a.recordSuccess(key);
    expect(await scanKeys(redis, `${keyPrefix}*`)).toEqual([`${keyPrefix}circuit:openai/gpt-4o`]);
  });
});

describe('circuit breaker without its Redis', () => {
  const key = 'openai/gpt-4o';

  it('answers closed, without throwing, when Redis cannot be reached at all', async () => {
    const redis = redisClient(`redis://127.0.0.1:${await freePort()}`);
    const { lines, logger } = capturingLogger();
    const breaker = createCircuitBreaker({ redis, keyPrefix: 'unreachable:', logger });
    await breaker.recordFailure(key);
    expect(await breaker.admit(key)).toBe('closed');
    expect(await breaker.snapshot(key)).toMatchObject({ state: 'DEGRADED', consecutiveFailures: 1 });
    expect(lines.filter((line) => line.msg.includes('not shared'))).toHaveLength(1);
  });

  it('answers within its timeout when Redis accepts the connection but never replies', async () => {
    const sockets = new Set<Socket>();
    const silent = createServer((socket) => sockets.add(socket));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    registerLeftover(async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => silent.close(resolve));
    });
    const { port } = silent.address() as { port: number };
    // No ready check: the client says 'ready' as soon as it is connected, like one whose Redis hangs.
    const redis = await readyRedisClient(`redis://127.0.0.1:${port}`, { enableReadyCheck: false });
    const breaker = createCircuitBreaker({ redis, keyPrefix: 'silent:', redisTimeoutMs: 50 });
    const started = performance.now();
    expect(await breaker.admit(key)).toBe('closed');
    await breaker.recordFailure(key);
    expect(await breaker.snapshotAll()).toMatchObject([{ key, consecutiveFailures: 1 }]);
    // A generous bound: the point is that it returns instead of waiting for Redis.
    expect(performance.now() - started).toBeLessThan(10_000);
  });

  it('judges on its own while its Redis is down, logs that once, and shares again when it is back', async () => {
    const server = await startRedisServer();
    const redis = await readyRedisClient(server.url, { enableOfflineQueue: false, maxRetriesPerRequest: 1, retryStrategy: () => 50 });
    const { lines, logger } = capturingLogger();
    const breaker = createCircuitBreaker({ redis, keyPrefix: 'restarted:', logger });
    await breaker.recordFailure(key);
    expect(await redis.get(`restarted:circuit:${key}`)).not.toBeNull();

    await server.kill();
    await failTimes(breaker, key, 2);
    // This instance saw the threshold reached itself: it skips the deployment without Redis.
    expect(await breaker.admit(key)).toBe('open');
    expect(await breaker.admit('other/model')).toBe('closed');
    expect(lines.filter((line) => line.level === 40)).toHaveLength(1);

    await server.start();
    await waitFor('the client to reconnect', () => redis.status === 'ready');
    // The restarted Redis lost everything: the shared view is closed again.
    expect(await breaker.admit(key)).toBe('closed');
    expect(lines.map((line) => line.msg)).toContain('circuit breakers are shared through Redis again');
  });
});

async function scanKeys(redis: Redis, pattern: string): Promise<string[]> {
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    cursor = next;
    keys.push(...batch);
  } while (cursor !== '0');
  return keys;
}
