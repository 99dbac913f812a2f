import OpenAI from 'openai';
import type { CompletionUsage } from 'openai/resources/completions';
import type { MeteredUsage } from '../metering/prices.js';
import type { ChatProvider, ChatRequest, ProviderEvent, ProviderFailure } from './provider.js';

export type Upstream = OpenAI;

/** The `openai` SDK pointed at OpenAI or any compatible server. Retries are ours (see generation.ts). */
export function createUpstream(options: { apiKey: string; baseUrl?: string; timeoutMs: number }): Upstream {
  return new OpenAI({ apiKey: options.apiKey, baseURL: options.baseUrl, maxRetries: 0, timeout: options.timeoutMs });
}

const PROBE_TTL_MS = { ok: 30_000, failed: 5_000 };

/**
 * Whether the upstream answers `GET /models` (free, unbilled). The answer is remembered for a
 * while so that readiness probes from every instance do not hit the provider each time.
 */
export function createUpstreamProbe(upstream: Upstream, timeoutMs = 2000): () => Promise<void> {
  let last: { until: number; result: Promise<void> } | undefined;
  return () => {
    if (last && Date.now() < last.until) return last.result;
    const probe = { until: Date.now() + PROBE_TTL_MS.ok, result: Promise.resolve() };
    probe.result = upstream.models.list({ timeout: timeoutMs, maxRetries: 0 }).then(
      () => undefined,
      (error: unknown) => {
        probe.until = Date.now() + PROBE_TTL_MS.failed;
        throw error;
      },
    );
    last = probe;
    return probe.result;
  };
}

export type UpstreamFailure = ProviderFailure;

/** The provider's own error code, when its body gave one (`context_length_exceeded`). */
function providerErrorCode(error: InstanceType<typeof OpenAI.APIError>): string | undefined {
  const code = error.code ?? error.type;
  return typeof code === 'string' && code.length <= 100 ? code : undefined;
}

/** Classifies what the SDK threw into something safe to store and show. */
export function describeUpstreamFailure(error: unknown, context: { reason?: 'timeout'; started?: boolean } = {}): UpstreamFailure {
  if (context.reason === 'timeout' || error instanceof OpenAI.APIConnectionTimeoutError) {
    return { kind: 'timeout', message: 'The model provider did not respond in time' };
  }
  if (error instanceof OpenAI.APIError && typeof error.status === 'number') {
    const status = error.status;
    const errorCode = providerErrorCode(error);
    if (status === 429) {
      const retryAfter = Number(error.headers?.get?.('retry-after'));
      return {
        kind: 'rate_limited',
        status,
        errorCode,
        retryAfterSeconds: Number.isFinite(retryAfter) ? retryAfter : undefined,
        message: 'The model provider is rate limiting requests (HTTP 429)',
      };
    }
    if (status >= 500) return { kind: 'server_error', status, errorCode, message: `The model provider failed (HTTP ${status})` };
    if (status === 401 || status === 403) {
      return { kind: 'credentials', status, errorCode, message: 'The model provider refused the server credentials' };
    }
    if (status === 404) return { kind: 'not_found', status, errorCode, message: 'The model provider does not serve this model (HTTP 404)' };
    return classifyRefusal(status, errorCode, error.message);
  }
  if (error instanceof OpenAI.APIError && context.started) {
    // An error event inside a stream that had begun.
    return { kind: 'cut', errorCode: providerErrorCode(error), message: 'The model provider reported an error mid-reply' };
  }
  if (error instanceof OpenAI.APIConnectionError && !context.started) {
    return { kind: 'connection', message: 'Could not reach the model provider' };
  }
  // A stream cut mid-way surfaces as a plain TypeError("terminated") from fetch.
  return context.started
    ? { kind: 'cut', message: 'The connection to the model provider broke off' }
    : { kind: 'connection', message: 'The connection to the model provider broke off' };
}

/**
 * A 4xx about the request itself: too long for the model, refused by a content policy (whose
 * reason the user may see), a prefill the model does not take, or anything else.
 */
export function classifyRefusal(status: number, errorCode: string | undefined, providerMessage: string): ProviderFailure {
  const said = `${errorCode ?? ''} ${providerMessage}`.toLowerCase();
  if (/context_length|context length|too many tokens|prompt is too long|maximum context/.test(said)) {
    return { kind: 'context_length', status, errorCode, message: 'The conversation is too long for the model' };
  }
  if (/content_policy|content_filter|content management policy|safety system/.test(said)) {
    return { kind: 'content_filter', status, errorCode, message: `The model provider refused the request on policy grounds: ${policyReason(providerMessage)}` };
  }
  if (/prefill/.test(said)) {
    return { kind: 'prefill_refused', status, errorCode, message: 'The model does not accept the start of a reply' };
  }
  return { kind: 'bad_request', status, errorCode, message: `The model provider rejected the request (HTTP ${status})` };
}

/** The provider's own words on a policy refusal, bounded and on one line; the user needs them to rephrase. */
function policyReason(providerMessage: string): string {
  const line = providerMessage.replace(/^\d{3}\s+/, '').replace(/\s+/g, ' ').trim();
  return line.length > 300 ? `${line.slice(0, 297)}...` : line || 'no reason given';
}

/** OpenAI's Chat Completions (and every server that speaks it) as a chat provider. */
export function openAICompatibleProvider(client: Upstream): ChatProvider {
  return {
    async *stream(request, { signal, timeoutMs }) {
      const stream = await client.chat.completions.create(
        {
          model: request.model,
          messages: request.messages,
          ...outputParams(request),
          stream: true,
          stream_options: { include_usage: true },
        },
        { signal, timeout: timeoutMs },
      );
      for await (const chunk of stream) {
        // The usage chunk that ends the stream has no choices.
        const choice = chunk.choices[0];
        const events: ProviderEvent[] = [];
        if (chunk.usage) events.push({ type: 'usage', usage: meteredUsage(chunk.usage) });
        if (choice?.delta?.content) events.push({ type: 'text', delta: choice.delta.content });
        if (choice?.finish_reason) events.push({ type: 'finish', reason: choice.finish_reason });
        yield* events.length > 0 ? events : [{ type: 'progress' } as const];
      }
    },
    describeFailure: describeUpstreamFailure,
  };
}

/**
 * The output cap and sampling for the model: reasoning models refuse `max_tokens` (they take
 * `max_completion_tokens`) and reject `temperature`, which is then left out rather than failing.
 */
function outputParams(request: ChatRequest): { max_tokens?: number; max_completion_tokens?: number; temperature?: number } {
  if (request.reasoning) return { max_completion_tokens: request.maxTokens };
  return { max_tokens: request.maxTokens, ...(request.temperature === undefined ? {} : { temperature: request.temperature }) };
}

/**
 * OpenAI's usage, with the cached and reasoning parts that are priced at their own rates. OpenAI
 * does not charge for writing its cache (nor report it).
 */
function meteredUsage(usage: CompletionUsage): MeteredUsage {
  return {
    promptTokens: usage.prompt_tokens,
    cachedTokens: usage.prompt_tokens_details?.cached_tokens ?? 0,
    cacheWriteTokens: 0,
    completionTokens: usage.completion_tokens,
    reasoningTokens: usage.completion_tokens_details?.reasoning_tokens ?? 0,
  };
}
