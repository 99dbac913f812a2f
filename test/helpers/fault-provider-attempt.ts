import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { setTimeout as delay } from 'node:timers/promises';
import type { FaultTimings, JournalEntry } from './fault-provider.js';
import {
  answerEvents,
  refusalReply,
  wholeAnswer,
  type AnswerContext,
  type CacheTokens,
  type ChatAsk,
  type Refusal,
  type WireShape,
} from './fault-provider-wire.js';
import { answerTokens, CANONICAL_ANSWER, faultOf, type Fault } from './fault-scenarios.js';

/** One chat request being answered: what was asked, its journal entry and its connection. */
export interface Attempt {
  shape: WireShape;
  ask: ChatAsk;
  entry: JournalEntry;
  /** Numbers the answer's id, unique within the provider. */
  sequence: number;
  req: IncomingMessage;
  res: ServerResponse;
  /** Aborted when the connection ends: the client left, or the provider closed. */
  signal: AbortSignal;
  /** Ends the connection without a proper HTTP end: a TCP reset, or a plain close. */
  hangUp(how: 'reset' | 'close'): void;
}

export interface AttemptSettings {
  timings: Readonly<FaultTimings>;
  cache: CacheTokens;
  apiKey?: string;
}

/** Faults that only a stream can show; a non-streamed request for them gets a whole answer. */
const streamOnlyFaults = new Set<Fault>(['stream_cut', 'stream_stall', 'malformed_event', 'no_done', 'inband_error']);

/**
 * Answers one attempt as its model's fault asks, keeping the journal entry's action up to date.
 * Waits reject with the attempt's signal when the connection ends.
 */
export async function answerAttempt(attempt: Attempt, { timings, cache, apiKey }: AttemptSettings): Promise<void> {
  const { shape, ask, entry, req, res, signal } = attempt;
  const refuse = (refusal: Refusal, headers: OutgoingHttpHeaders = {}, note = '') => {
    const { status, body, label } = refusalReply(shape, refusal);
    entry.action = label + note;
    sendJson(res, status, body, headers);
  };
  const key = apiKeyOf(req);
  if (!key || (apiKey !== undefined && key !== apiKey)) return refuse('unauthorized');
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
    id: shape === 'openai' ? `chatcmpl-fault-${attempt.sequence}` : `msg_fault_${attempt.sequence}`,
    model: ask.model,
    includeUsage: ask.includeUsage,
    promptTokens: ask.promptTokens,
    cache,
  };
  if (ask.stream) return streamAnswer(attempt, timings, fault, text, context);
  if (fault === 'slow_first_token') await delay(timings.slowFirstTokenMs, undefined, { signal });
  entry.completionTokensSent = answerTokens(text).length;
  entry.action = streamOnlyFaults.has(fault) ? '200 whole (a stream fault, not streamed)' : '200 whole';
  sendJson(res, 200, wholeAnswer(shape, context, text, entry.completionTokensSent));
}

async function streamAnswer(attempt: Attempt, timings: Readonly<FaultTimings>, fault: Fault, text: string, context: AnswerContext): Promise<void> {
  const { shape, entry, res, signal } = attempt;
  const wire = answerEvents(shape, context);
  // Resolves once the chunk is handed to the socket, so that a cut or a stall follows what was sent.
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
  // The faults "after N tokens" act as soon as the N-th token is out, before the next pause.
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
    if (index > 0 && timings.tokenIntervalMs > 0) await delay(timings.tokenIntervalMs, undefined, { signal });
    if (fault === 'malformed_event' && index === timings.malformedAtToken) {
      entry.action = `200 stream, malformed event before token ${index}`;
      await send(wire.malformed());
    }
    await send(wire.token(token));
    entry.completionTokensSent += 1;
  }
  await send(wire.closing(entry.completionTokensSent));
  if (fault === 'no_done') entry.action = shape === 'openai' ? '200 stream without [DONE]' : '200 stream without message_stop';
  else await send(wire.sentinel());
  res.end();
}

/** A prefill that begins the canonical answer is continued: the answer after it, to the character. */
function answerText(prefill: string | null): string {
  const begun = prefill?.trim();
  return begun && CANONICAL_ANSWER.startsWith(begun) ? CANONICAL_ANSWER.slice(begun.length) : CANONICAL_ANSWER;
}

function apiKeyOf(req: IncomingMessage): string | undefined {
  const bearer = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '')?.[1];
  const header = req.headers['x-api-key'];
  return bearer ?? (typeof header === 'string' && header !== '' ? header : undefined);
}

export function sendJson(res: ServerResponse, status: number, body: object, headers: OutgoingHttpHeaders = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(body));
}
