import { EventEmitter } from 'node:events';
import { createServer, type IncomingMessage, type OutgoingHttpHeaders, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { setTimeout as delay } from 'node:timers/promises';
import {
  answerEvents,
  readChatAsk,
  refusalReply,
  wholeAnswer,
  type AnswerContext,
  type CacheTokens,
  type ChatAsk,
  type Refusal,
  type WireShape,
} from './fault-provider-wire.js';
import { answerTokens, CANONICAL_ANSWER, faultOf, type Fault } from './fault-scenarios.js';
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

/** Faults that only a stream can show; a non-streamed request for them gets a whole answer. */
const streamOnlyFaults = new Set<Fault>(['stream_cut', 'stream_stall', 'malformed_event', 'no_done', 'inband_error']);

/**
 * A fake LLM provider on a free loopback port that misbehaves as the model name asks (see
 * fault-scenarios.ts), speaking OpenAI Chat Completions on /v1/chat/completions and Anthropic
 * Messages on /v1/messages. Closed at the end of the test (or file) that started it.
 */
export async function startFaultProvider(options: FaultProviderOptions = {}): Promise<FaultProvider> {
  const timings: Readonly<FaultTimings> = Object.freeze({ ...DEFAULT_FAULT_TIMINGS, ...options.timings });
  const cache: CacheTokens = { readTokens: options.cache?.readTokens ?? 0, writeTokens: options.cache?.writeTokens ?? 0 };
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
    await answer({ shape, ask, entry, req, res, ...connection }).catch((error: unknown) => {
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
      /** Ends the connection without a proper HTTP end: a TCP reset, or a plain close. */
      hangUp(how: 'reset' | 'close') {
        hungUp = true;
        if (how === 'reset') req.socket.resetAndDestroy();
        else req.socket.destroy();
      },
    };
  }

  interface AttemptContext {
    shape: WireShape;
    ask: ChatAsk;
    entry: JournalEntry;
    req: IncomingMessage;
    res: ServerResponse;
    signal: AbortSignal;
    hangUp(how: 'reset' | 'close'): void;
  }

  async function answer(attempt: AttemptContext): Promise<void> {
    const { shape, ask, entry, req, res, signal } = attempt;
    const refuse = (refusal: Refusal, headers: OutgoingHttpHeaders = {}, note = '') => {
      const { status, body, label } = refusalReply(shape, refusal);
      entry.action = label + note;
      sendJson(res, status, body, headers);
    };
    const key = apiKeyOf(req);
    if (!key || (options.apiKey !== undefined && key !== options.apiKey)) return refuse('unauthorized');
    const fault = faultOf(ask.model);
    if (!fault) return refuse('not_found');
    if (fault === 'ok_noprefill' && ask.lastRole === 'assistant') return refuse('prefill_refused');
    const firstAttempt = entry.attempt === 1;
    switch (fault) {
      case 'rate_limited_once':
        if (!firstAttempt) break;
        return refuse(
          'rate_limited',
          { 'retry-after': String(timings.retryAfterSeconds), 'retry-after-ms': String(Math.round(timings.retryAfterSeconds * 1000)) },
          `, retry-after ${timings.retryAfterSeconds} s`,
        );
      case 'rate_limited':
        return refuse('rate_limited');
      case 'server_error_once':
        if (!firstAttempt) break;
        return refuse('server_error');
      case 'overloaded':
        return refuse('overloaded');
      case 'context_length':
        return refuse('context_length');
      case 'content_filter':
        return refuse('content_filter');
      case 'flap':
        if (entry.t < timings.flapDownMs) return refuse('overloaded', {}, ' (down window)');
        break;
      case 'reset_once':
        if (!firstAttempt) break;
        entry.action = 'tcp reset before headers';
        return attempt.hangUp('reset');
      case 'no_response':
        entry.action = 'no response';
        await delay(timings.noResponseMs, undefined, { signal });
        entry.action = `no response, closed after ${timings.noResponseMs} ms`;
        return attempt.hangUp('close');
      default:
        break;
    }
    const text = answerText(ask.prefill);
    const context: AnswerContext = {
      id: shape === 'openai' ? `chatcmpl-fault-${++sequence}` : `msg_fault_${++sequence}`,
      model: ask.model,
      includeUsage: ask.includeUsage,
      promptTokens: ask.promptTokens,
      cache,
    };
    if (!ask.stream) {
      if (fault === 'slow_first_token') await delay(timings.slowFirstTokenMs, undefined, { signal });
      entry.completionTokensSent = answerTokens(text).length;
      entry.action = streamOnlyFaults.has(fault) ? '200 whole (a stream fault, not streamed)' : '200 whole';
      return sendJson(res, 200, wholeAnswer(shape, context, text, entry.completionTokensSent));
    }
    await streamAnswer(attempt, fault, text, context);
  }

  async function streamAnswer(attempt: AttemptContext, fault: Fault, text: string, context: AnswerContext): Promise<void> {
    const { shape, entry, res, signal } = attempt;
    const wire = answerEvents(shape, context);
    const send = (chunk: string) =>
      new Promise<void>((resolve, reject) => {
        signal.throwIfAborted();
        const onAbort = () => reject(signal.reason);
        signal.addEventListener('abort', onAbort, { once: true });
        res.write(chunk, () => {
          signal.removeEventListener('abort', onAbort);
          resolve();
        });
      });

    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache' });
    res.flushHeaders();
    entry.action = '200 stream';
    if (fault === 'slow_first_token') {
      entry.action = `200 stream, first token after ${timings.slowFirstTokenMs} ms`;
      await delay(timings.slowFirstTokenMs, undefined, { signal });
    }
    await send(wire.opening());
    for (const [index, token] of answerTokens(text).entries()) {
      if (fault === 'stream_cut' && index === timings.cutAfterTokens) {
        entry.action = `stream cut after ${index} tokens`;
        return attempt.hangUp('close');
      }
      if (fault === 'stream_stall' && index === timings.stallAfterTokens) {
        entry.action = `stream stalled after ${index} tokens`;
        await delay(timings.stallMs, undefined, { signal });
        entry.action = `stream stalled after ${index} tokens, closed after ${timings.stallMs} ms`;
        return attempt.hangUp('close');
      }
      if (fault === 'inband_error' && index === timings.inbandErrorAfterTokens) {
        entry.action = `in-band error after ${index} tokens`;
        await send(wire.inbandError());
        res.end();
        return;
      }
      if (fault === 'malformed_event' && index === timings.malformedAtToken) {
        entry.action = `200 stream, malformed event before token ${index}`;
        await send(wire.malformed());
      }
      await send(wire.token(token));
      entry.completionTokensSent += 1;
      if (timings.tokenIntervalMs > 0) await delay(timings.tokenIntervalMs, undefined, { signal });
    }
    await send(wire.closing(entry.completionTokensSent));
    if (fault === 'no_done') entry.action = shape === 'openai' ? '200 stream without [DONE]' : '200 stream without message_stop';
    else await send(wire.sentinel());
    res.end();
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

/** A prefill that begins the canonical answer is continued: the answer after it, to the character. */
function answerText(prefill: string | null): string {
  const begun = prefill?.trim();
  return begun && CANONICAL_ANSWER.startsWith(begun) ? CANONICAL_ANSWER.slice(begun.length) : CANONICAL_ANSWER;
}

function shapeOf(req: IncomingMessage): WireShape | undefined {
  if (req.method !== 'POST') return undefined;
  const path = new URL(req.url ?? '/', 'http://fault-provider').pathname;
  if (path === '/v1/chat/completions') return 'openai';
  if (path === '/v1/messages') return 'anthropic';
  return undefined;
}

function apiKeyOf(req: IncomingMessage): string | undefined {
  const bearer = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '')?.[1];
  const header = req.headers['x-api-key'];
  return bearer ?? (typeof header === 'string' && header !== '' ? header : undefined);
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

function sendJson(res: ServerResponse, status: number, body: object, headers: OutgoingHttpHeaders = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(body));
}
