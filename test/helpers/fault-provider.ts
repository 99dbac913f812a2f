import { EventEmitter } from 'node:events';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { answerAttempt, sendJson } from './fault-provider-attempt.js';
import { readChatAsk, refusalReply, type CacheTokens, type WireShape } from './fault-provider-wire.js';
import { registerLeftover } from './leftovers.js';

export { PREFILL_REFUSAL_MESSAGE, type WireShape } from './fault-provider-wire.js';
export { CANONICAL_ANSWER, FAULT_SCENARIOS, HEALTHY_MODEL, NO_PREFILL_MODEL, answerTokens, faultOf } from './fault-scenarios.js';
export type { Fault, FaultScenario } from './fault-scenarios.js';

/** The fault provider's timings; token counts are 0-based positions in the answer. */
export interface FaultTimings {
  /** S01's Retry-After; also sent as retry-after-ms, so that a fraction keeps tests fast. */
  retryAfterSeconds: number;
  slowFirstTokenMs: number;
  stallMs: number;
  /** How long S06 keeps a request unanswered if the client does not give up first. */
  noResponseMs: number;
  flapDownMs: number;
  tokenIntervalMs: number;
  cutAfterTokens: number;
  stallAfterTokens: number;
  malformedAtToken: number;
  inbandErrorAfterTokens: number;
}

/** Fast enough for a test suite on a busy machine; a test that measures one sets it shorter. */
export const DEFAULT_FAULT_TIMINGS: Readonly<FaultTimings> = Object.freeze({
  retryAfterSeconds: 1,
  slowFirstTokenMs: 2_000,
  stallMs: 3_000,
  noResponseMs: 20_000,
  flapDownMs: 3_000,
  tokenIntervalMs: 3,
  cutAfterTokens: 40,
  stallAfterTokens: 20,
  malformedAtToken: 10,
  inbandErrorAfterTokens: 30,
});

export interface FaultProviderOptions {
  timings?: Partial<FaultTimings>;
  /** Cache figures every Anthropic-shaped usage reports beside input_tokens (pricing tests). */
  cache?: Partial<CacheTokens>;
  /** Accept only this key; by default any non-empty key is accepted. */
  apiKey?: string;
}

/** One chat request the provider received, and what it did with it. */
export interface JournalEntry {
  /** Milliseconds since start or the last reset, when the request arrived. */
  t: number;
  model: string;
  shape: WireShape;
  /** The model's n-th request since start or the last reset (what "once" faults count). */
  attempt: number;
  stream: boolean;
  lastRole: string | null;
  /** The text of a trailing assistant message, or null. */
  prefill: string | null;
  /** What the provider did (`200 stream`, `429 rate_limit_exceeded`, `stream cut after 40 tokens`…). */
  action: string;
  promptTokens: number;
  completionTokensSent: number;
  /** On the clock of `t`: when the client closed the connection before the provider was done. */
  clientGoneAtMs?: number;
}

export interface FaultProvider {
  /** For the openai SDK's baseURL (ends in /v1). */
  baseUrl: string;
  /** For @anthropic-ai/sdk's baseURL (it appends /v1/messages). */
  anthropicBaseUrl: string;
  timings: Readonly<FaultTimings>;
  /** Copies of every entry since start or the last reset, in arrival order. */
  journal(): JournalEntry[];
  attempts(model: string): JournalEntry[];
  /** Clears the journal and the attempt counts, and restarts the clock (and S15's down window). */
  reset(): void;
  /** Resolves with the model's attempts as soon as the count-th one arrives; rejects after timeoutMs. */
  waitForAttempts(model: string, count: number, timeoutMs?: number): Promise<JournalEntry[]>;
  /** Resolves once no request is being answered (the journal's actions are then final). */
  waitForIdle(timeoutMs?: number): Promise<void>;
  /** Stops listening and destroys every connection, hanging ones included. Idempotent. */
  close(): Promise<void>;
}

/**
 * A fake LLM provider on a free loopback port that misbehaves as the model name asks (see
 * fault-scenarios.ts), speaking OpenAI Chat Completions on /v1/chat/completions and Anthropic
 * Messages on /v1/messages. Closed at the end of the test (or file) that started it.
 */
export async function startFaultProvider(options: FaultProviderOptions = {}): Promise<FaultProvider> {
  const timings: Readonly<FaultTimings> = Object.freeze({ ...DEFAULT_FAULT_TIMINGS, ...options.timings });
  const cache: CacheTokens = { readTokens: options.cache?.readTokens ?? 0, writeTokens: options.cache?.writeTokens ?? 0 };
  const settings = { timings, cache, apiKey: options.apiKey };
  const events = new EventEmitter().setMaxListeners(0);
  const inFlight = new Set<JournalEntry>();
  let startedAt = performance.now();
  let entries: JournalEntry[] = [];
  let attemptCounts = new Map<string, number>();
  let sequence = 0;
  let closing = false;
  const now = () => Math.round(performance.now() - startedAt);

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const arrivedAt = now();
    const shape = shapeOf(req);
    if (!shape) return sendJson(res, 404, { error: { message: `No route for ${req.method} ${req.url}` } });
    const ask = readChatAsk(shape, parseJson(await readBody(req)));
    if (!ask) {
      const { status, body } = refusalReply(shape, 'bad_request');
      return sendJson(res, status, body);
    }
    const attempt = (attemptCounts.get(ask.model) ?? 0) + 1;
    attemptCounts.set(ask.model, attempt);
    const entry: JournalEntry = {
      t: arrivedAt,
      model: ask.model,
      shape,
      attempt,
      stream: ask.stream,
      lastRole: ask.lastRole,
      prefill: ask.prefill,
      action: 'received',
      promptTokens: ask.promptTokens,
      completionTokensSent: 0,
    };
    entries.push(entry);
    const connection = watchConnection(entry, req, res);
    events.emit('attempt');
    await answerAttempt({ shape, ask, entry, sequence: ++sequence, req, res, ...connection }, settings).catch((error: unknown) => {
      // A client gone (or the provider closed) while a fault waits or writes is expected.
      if (!connection.signal.aborted) throw error;
    });
  }

  /** Tracks the attempt until its connection is done; aborts its waits if the client leaves. */
  function watchConnection(entry: JournalEntry, req: IncomingMessage, res: ServerResponse) {
    const controller = new AbortController();
    let hungUp = false;
    inFlight.add(entry);
    const settle = (finished: boolean) => {
      if (!inFlight.delete(entry)) return;
      if (!finished && !hungUp && !closing) entry.clientGoneAtMs = now();
      controller.abort();
      if (inFlight.size === 0) events.emit('idle');
    };
    res.once('finish', () => settle(true));
    res.once('close', () => settle(res.writableFinished));
    return {
      signal: controller.signal,
      hangUp(how: 'reset' | 'close') {
        hungUp = true;
        if (how === 'reset') req.socket.resetAndDestroy();
        else req.socket.destroy();
      },
    };
  }

  const server = createServer((req, res) => {
    // Writing to a client that left is one of the cases here, not a failure.
    res.on('error', () => {});
    handle(req, res).catch((error: unknown) => {
      if (res.headersSent) res.destroy();
      else sendJson(res, 500, { error: { message: `the fault provider failed: ${String(error)}`, type: 'fault_provider_bug' } });
    });
  });
  server.listen(0, '127.0.0.1');
  await new Promise<void>((resolve, reject) => server.once('listening', resolve).once('error', reject));
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const close = registerLeftover(async () => {
    closing = true;
    events.emit('closed');
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  const attemptsOf = (model: string) => entries.filter((e) => e.model === model).map((e) => ({ ...e }));

  return {
    baseUrl: `${origin}/v1`,
    anthropicBaseUrl: origin,
    timings,
    journal: () => entries.map((e) => ({ ...e })),
    attempts: attemptsOf,
    reset() {
      startedAt = performance.now();
      entries = [];
      attemptCounts = new Map();
    },
    waitForAttempts: (model, count, timeoutMs = 10_000) =>
      waitForEvent(events, 'attempt', timeoutMs, () => {
        const seen = attemptsOf(model);
        return seen.length >= count ? seen : undefined;
      }, () => `attempt ${count} on ${model} (saw ${attemptsOf(model).length})`),
    waitForIdle: (timeoutMs = 10_000) =>
      waitForEvent(events, 'idle', timeoutMs, () => (inFlight.size === 0 ? true : undefined), () =>
        `the fault provider to be idle (still answering: ${[...inFlight].map((e) => `${e.model} #${e.attempt} ${e.action}`).join('; ')})`,
      ).then(() => undefined),
    close,
  };
}

/** Resolves with check()'s value as soon as an `event` makes it defined; no polling. */
function waitForEvent<T>(events: EventEmitter, event: string, timeoutMs: number, check: () => T | undefined, what: () => string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const settle = (outcome: () => void) => {
      clearTimeout(timer);
      events.off(event, onEvent);
      events.off('closed', onClosed);
      outcome();
    };
    const onEvent = () => {
      const value = check();
      if (value !== undefined) settle(() => resolve(value));
    };
    const onClosed = () => settle(() => reject(new Error(`the fault provider closed while waiting for ${what()}`)));
    const timer = setTimeout(() => settle(() => reject(new Error(`waited ${timeoutMs} ms for ${what()}`))), timeoutMs);
    events.on(event, onEvent);
    events.on('closed', onClosed);
    onEvent();
  });
}

function shapeOf(req: IncomingMessage): WireShape | undefined {
  if (req.method !== 'POST') return undefined;
  const path = new URL(req.url ?? '/', 'http://fault-provider').pathname;
  if (path === '/v1/chat/completions') return 'openai';
  if (path === '/v1/messages') return 'anthropic';
  return undefined;
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
