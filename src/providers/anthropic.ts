import Anthropic, { APIConnectionError, APIConnectionTimeoutError, APIError, APIUserAbortError } from '@anthropic-ai/sdk';
import type { MessageDeltaUsage, RawMessageStreamEvent, Usage } from '@anthropic-ai/sdk/resources/messages';
import type { ErrorType } from '@anthropic-ai/sdk/resources/shared';
import type { MeteredUsage } from '../metering/prices.js';
import { afterPrefill, messagesRequest } from './anthropic-request.js';
import type { ChatProvider, ProviderEvent, ProviderFailure } from './provider.js';
import { classifyHttpFailure, classifyRefusal } from './refusals.js';
import { createNodeHttpFetch } from './node-http-fetch.js';
import { serverSentEvents } from './server-sent-events.js';

export type AnthropicClient = Anthropic;

/**
 * The `@anthropic-ai/sdk` client for Anthropic's Messages API. Retries are the router's. The base
 * URL is always given (null: Anthropic's own), so the SDK reads no ANTHROPIC_BASE_URL of its own.
 */
export function createAnthropicClient(options: { apiKey: string; baseUrl?: string; timeoutMs: number }): AnthropicClient {
  return new Anthropic({
    apiKey: options.apiKey,
    baseURL: options.baseUrl ?? null,
    maxRetries: 0,
    timeout: options.timeoutMs,
    fetch: createNodeHttpFetch(),
  });
}

/** Anthropic's Messages API as a chat provider. */
export function anthropicProvider(client: AnthropicClient): ChatProvider {
  return {
    async *stream(request, { signal, timeoutMs }) {
      const { params, prefillWhitespace } = messagesRequest(request);
      // The raw events, read here, not the SDK's parsed stream: that one drops `ping`, which shows
      // that a slow answer is still alive.
      const response = await client.messages.create(params, { signal, timeout: timeoutMs }).asResponse();
      try {
        yield* providerEvents(serverSentEvents(response), response.headers, afterPrefill(prefillWhitespace));
      } catch (error) {
        // Aborting ends the stream rather than failing it, as ChatProvider promises.
        if (signal.aborted) return;
        throw error;
      }
    },
    describeFailure: describeAnthropicFailure,
  };
}

/** Streaming events to normalized ones; usage and finish come last, when the message is complete. */
async function* providerEvents(
  events: AsyncIterable<{ event?: string | undefined; data: string }>,
  headers: Headers,
  replyText: (delta: string) => string,
): AsyncGenerator<ProviderEvent> {
  const counts = new TokenCounts();
  let stopReason: string | null = null;
  // Anthropic numbers every content block; tool calls are numbered apart, from 0.
  const toolIndexOf = new Map<number, number>();
  for await (const sse of events) {
    if (sse.event === 'error') throw inBandError(sse.data, headers);
    const event = parseEvent(sse.data);
    switch (event?.type) {
      case 'message_start':
        counts.start(event.message.usage);
        break;
      case 'content_block_start':
        if (event.content_block.type === 'tool_use') {
          toolIndexOf.set(event.index, toolIndexOf.size);
          yield { type: 'tool_call', index: toolIndexOf.get(event.index)!, id: event.content_block.id, name: event.content_block.name, argumentsDelta: '' };
          continue;
        }
        break;
      case 'content_block_delta':
        if (event.delta.type === 'input_json_delta' && toolIndexOf.has(event.index)) {
          yield { type: 'tool_call', index: toolIndexOf.get(event.index)!, argumentsDelta: event.delta.partial_json };
          continue;
        }
        if (event.delta.type === 'text_delta') {
          const delta = replyText(event.delta.text);
          if (delta) {
            yield { type: 'text', delta };
            continue;
          }
        }
        break;
      case 'message_delta':
        stopReason = event.delta.stop_reason;
        counts.update(event.usage);
        break;
      case 'message_stop':
        yield { type: 'usage', usage: counts.metered() };
        yield { type: 'finish', reason: finishReason(stopReason) };
        return;
    }
    // Any other event (a ping, a block opening or closing, thinking, or one that is not JSON,
    // skipped) only shows that the provider is alive.
    yield { type: 'progress' };
  }
  // The message said how it stopped and what it used: only message_stop is missing, and not waited for.
  if (stopReason !== null) {
    yield { type: 'usage', usage: counts.metered() };
    yield { type: 'finish', reason: finishReason(stopReason) };
    return;
  }
  // A connection closed cleanly mid-message is still cut off.
  throw new APIConnectionError({ message: 'The stream ended before message_stop' });
}

/** An event's JSON; undefined for one a proxy mangled (it is skipped, and its content never logged). */
function parseEvent(data: string): RawMessageStreamEvent | { type?: 'ping' } | undefined {
  try {
    return (data ? JSON.parse(data) : {}) as RawMessageStreamEvent | { type?: 'ping' };
  } catch {
    return undefined;
  }
}

/** The in-band `error` event, raised as the SDK's own parsed stream raises it. */
function inBandError(data: string, headers: Headers): APIError {
  let body: { error?: { type?: unknown } } | string = data;
  try {
    body = JSON.parse(data) as { error?: { type?: unknown } };
  } catch {
    // Not JSON: the error keeps the raw text, and no type.
  }
  const type = typeof body === 'object' && typeof body?.error?.type === 'string' ? (body.error.type as ErrorType) : null;
  return new APIError(undefined, body, undefined, headers, type);
}

/**
 * Anthropic's token counts: `message_start` has the input's, `message_delta` the cumulative
 * output and, when it sends them, cumulative input counts that replace the first ones.
 */
class TokenCounts {
  private input = 0;
  private cacheWrite = 0;
  private cacheRead = 0;
  private output = 0;

  start(usage: Usage): void {
    this.input = usage.input_tokens;
    this.cacheWrite = usage.cache_creation_input_tokens ?? 0;
    this.cacheRead = usage.cache_read_input_tokens ?? 0;
    this.output = usage.output_tokens;
  }

  update(usage: MessageDeltaUsage): void {
    this.output = usage.output_tokens;
    this.input = usage.input_tokens ?? this.input;
    this.cacheWrite = usage.cache_creation_input_tokens ?? this.cacheWrite;
    this.cacheRead = usage.cache_read_input_tokens ?? this.cacheRead;
  }

  /**
   * Anthropic's `input_tokens` leaves out the tokens read from and written to the cache; our
   * prompt tokens, as OpenAI counts them, include both.
   */
  metered(): MeteredUsage {
    return {
      promptTokens: this.input + this.cacheWrite + this.cacheRead,
      cachedTokens: this.cacheRead,
      cacheWriteTokens: this.cacheWrite,
      completionTokens: this.output,
      reasoningTokens: 0,
    };
  }
}

/** Anthropic's stop reasons in OpenAI's words; the others are passed on as they are. */
function finishReason(stopReason: string | null): string {
  switch (stopReason) {
    case 'end_turn':
    case 'stop_sequence':
      return 'stop';
    case 'max_tokens':
    // The reply filled what the context window left: cut for length all the same.
    case 'model_context_window_exceeded':
      return 'length';
    case 'tool_use':
      return 'tool_calls';
    case 'refusal':
      return 'content_filter';
    default:
      return stopReason ?? 'stop';
  }
}

/** Classifies what the stream threw into something safe to store and show. */
export function describeAnthropicFailure(error: unknown, context: { reason?: 'timeout'; started?: boolean } = {}): ProviderFailure {
  if (context.reason === 'timeout' || error instanceof APIConnectionTimeoutError) {
    return { kind: 'timeout', message: 'The model provider did not respond in time' };
  }
  if (error instanceof APIError && typeof error.status === 'number') {
    return classifyHttpFailure(error.status, anthropicErrorType(error), error.headers, error.apiMessage ?? '');
  }
  if (isInBandError(error)) return describeInBandError(error, context.started ?? false);
  if (error instanceof APIConnectionError && !context.started) {
    return { kind: 'connection', message: 'Could not reach the model provider' };
  }
  // A connection lost mid-stream surfaces as a plain TypeError("terminated") from fetch.
  return context.started
    ? { kind: 'cut', message: 'The connection to the model provider broke off' }
    : { kind: 'connection', message: 'The connection to the model provider broke off' };
}

/**
 * An `error` event inside a 200 stream. Once the reply has begun it is a cut, whatever its type;
 * before, Anthropic's overload or internal error is a server error worth another attempt.
 */
function describeInBandError(error: APIError, started: boolean): ProviderFailure {
  const errorCode = anthropicErrorType(error);
  if (started) return { kind: 'cut', errorCode, message: 'The model provider reported an error mid-reply' };
  if (errorCode === 'rate_limit_error') return { kind: 'rate_limited', errorCode, message: 'The model provider is rate limiting requests' };
  if (errorCode === 'invalid_request_error') return classifyRefusal(undefined, errorCode, error.apiMessage ?? '');
  return { kind: 'server_error', errorCode, message: 'The model provider failed before replying' };
}

/** In-band errors have no HTTP status; connection errors and aborts have none either, and no body. */
function isInBandError(error: unknown): error is APIError {
  return (
    error instanceof APIError &&
    error.status === undefined &&
    !(error instanceof APIConnectionError) &&
    !(error instanceof APIUserAbortError)
  );
}

/** Anthropic's error type (`overloaded_error`, `invalid_request_error`), when its body gave one. */
function anthropicErrorType(error: APIError): string | undefined {
  return typeof error.type === 'string' && error.type.length <= 100 ? error.type : undefined;
}
