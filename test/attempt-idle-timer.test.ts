import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { runAttempt, type AttemptLimits, type AttemptResult } from '../src/generation/attempt.js';
import type { ProviderEvent } from '../src/providers/provider.js';
import type { RouteTarget } from '../src/providers/router.js';

/**
 * The idle timeout of one upstream call, on fake clocks: it is one timer per call, moved lazily,
 * so these check that it fires once the upstream has been silent for the whole wait, never before,
 * and only once, however many events came while it was armed.
 */
const FIRST_TOKEN_MS = 1_000;
const IDLE_MS = 300;

/** An upstream the test feeds event by event; like the real providers, aborting just ends the stream. */
function scriptedUpstream() {
  const queued: ProviderEvent[] = [];
  let wake: (() => void) | undefined;
  let ended = false;
  const target = {
    key: 'scripted',
    timeoutMs: IDLE_MS,
    provider: {
      chat: {
        async *stream(_request: unknown, { signal }: { signal: AbortSignal }) {
          signal.addEventListener('abort', () => wake?.());
          while (!signal.aborted) {
            const event = queued.shift();
            if (event) {
              yield event;
              continue;
            }
            if (ended) return;
            await new Promise<void>((resolve) => (wake = resolve));
          }
        },
        describeFailure: (_error: unknown, context?: { reason?: 'timeout' }) => ({
          kind: context?.reason === 'timeout' ? 'timeout' : 'unknown',
          message: 'failed',
        }),
      },
    },
  } as unknown as RouteTarget;
  return {
    target,
    send(event: ProviderEvent) {
      queued.push(event);
      wake?.();
    },
    end() {
      ended = true;
      wake?.();
    },
  };
}

function start(upstream: ReturnType<typeof scriptedUpstream>, limits: Partial<AttemptLimits> = {}) {
  let result: AttemptResult | undefined;
  const texts: string[] = [];
  const attempt = runAttempt(
    upstream.target,
    { model: 'scripted', messages: [] } as never,
    { firstTokenMs: FIRST_TOKEN_MS, idleMs: IDLE_MS, deadline: Date.now() + 60_000, maxToolArgumentsBytes: 1_000, ...limits },
    new AbortController().signal,
    (delta) => texts.push(delta),
    () => {},
  ).then((r) => (result = r));
  return { attempt, texts, result: () => result };
}

/**
 * The timers the attempt's own code has armed and that are still pending (neither fired nor
 * cleared). Timers of other code in the same worker (a previous file's leftovers, running late on
 * a busy machine) are not the attempt's, and are not counted.
 */
function pendingAttemptTimers(): Set<unknown> {
  const pending = new Set<unknown>();
  const arm = globalThis.setTimeout;
  const disarm = globalThis.clearTimeout;
  vi.spyOn(globalThis, 'setTimeout').mockImplementation(((callback: (...args: unknown[]) => void, ms?: number, ...args: unknown[]) => {
    const ours = new Error().stack?.includes('generation/attempt') ?? false;
    const id = arm(() => {
      pending.delete(id);
      callback(...args);
    }, ms);
    if (ours) pending.add(id);
    return id;
  }) as typeof setTimeout);
  vi.spyOn(globalThis, 'clearTimeout').mockImplementation(((id: Parameters<typeof clearTimeout>[0]) => {
    pending.delete(id);
    disarm(id);
  }) as typeof clearTimeout);
  return pending;
}

/** Moves the fake clocks by `ms`, running the timers, immediates and promise jobs due meanwhile. */
const advance = (ms: number) => vi.advanceTimersByTimeAsync(ms);

describe('the idle timeout of an upstream call', () => {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setImmediate', 'clearImmediate', 'Date', 'performance'] });
  });
  afterEach(() => {
    vi.restoreAllMocks();
    vi.useRealTimers();
  });

  it('times out a silent stream once the idle wait has passed since its last event, not before', async () => {
    const timers = pendingAttemptTimers();
    const upstream = scriptedUpstream();
    const call = start(upstream);
    await advance(10);
    upstream.send({ type: 'text', delta: 'a' });
    // Events every 100 ms for a second: each restarts the wait, although the timer was armed once.
    for (let i = 0; i < 10; i += 1) {
      await advance(100);
      upstream.send({ type: 'text', delta: 'b' });
    }
    await advance(IDLE_MS - 1);
    expect(call.result()).toBeUndefined();
    await advance(2);
    expect(call.result()?.outcome).toBe('TIMEOUT');
    expect(call.result()?.text).toBe('a' + 'b'.repeat(10));
    expect(timers.size).toBe(0);
  });

  it('counts any event, not only text, as the upstream being heard from', async () => {
    const upstream = scriptedUpstream();
    const call = start(upstream);
    upstream.send({ type: 'text', delta: 'a' });
    await advance(IDLE_MS - 50);
    upstream.send({ type: 'finish', reason: 'stop' });
    await advance(IDLE_MS - 1);
    expect(call.result()).toBeUndefined();
    await advance(2);
    expect(call.result()?.outcome).toBe('TIMEOUT');
  });

  it('waits for the first token from the start of the call, whatever comes before it', async () => {
    const upstream = scriptedUpstream();
    const call = start(upstream);
    await advance(FIRST_TOKEN_MS - 100);
    upstream.send({ type: 'finish', reason: 'stop' });
    await advance(99);
    expect(call.result()).toBeUndefined();
    await advance(2);
    expect(call.result()?.outcome).toBe('TIMEOUT');
    expect(call.texts).toEqual([]);
  });

  it('gives a paused process a fresh wait instead of timing out: its timer fired late, and data may be unread', async () => {
    const upstream = scriptedUpstream();
    const call = start(upstream);
    upstream.send({ type: 'text', delta: 'a' });
    await advance(1);
    // The wall clock jumps as after a SIGSTOP: the timer fires far past its time.
    vi.setSystemTime(Date.now() + 5_000);
    await advance(IDLE_MS);
    expect(call.result()).toBeUndefined();
    await advance(IDLE_MS - 10);
    upstream.send({ type: 'text', delta: 'b' });
    await advance(IDLE_MS - 1);
    expect(call.result()).toBeUndefined();
    await advance(2);
    expect(call.result()?.outcome).toBe('TIMEOUT');
    expect(call.result()?.text).toBe('ab');
  });

  it('leaves no timer behind once the call has ended, so nothing fires afterwards', async () => {
    const timers = pendingAttemptTimers();
    const upstream = scriptedUpstream();
    const call = start(upstream);
    upstream.send({ type: 'text', delta: 'done' });
    await advance(IDLE_MS / 2);
    upstream.send({ type: 'usage', usage: { inputTokens: 1, outputTokens: 1 } } as unknown as ProviderEvent);
    upstream.send({ type: 'finish', reason: 'stop' });
    upstream.end();
    await advance(1);
    expect(call.result()?.outcome).toBe('OK');
    expect(timers.size).toBe(0);
  });

  it('times out at the deadline of the reply even while events keep coming', async () => {
    const upstream = scriptedUpstream();
    const call = start(upstream, { deadline: Date.now() + 1_000 });
    for (let i = 0; i < 9; i += 1) {
      upstream.send({ type: 'text', delta: 'x' });
      await advance(100);
    }
    upstream.send({ type: 'text', delta: 'x' });
    await advance(99);
    expect(call.result()).toBeUndefined();
    await advance(2);
    expect(call.result()?.outcome).toBe('TIMEOUT');
  });
});
