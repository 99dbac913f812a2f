import OpenAI from 'openai';
import type { CompletionUsage } from 'openai/resources/completions';
import type { MeteredUsage } from '../metering/prices.js';
import type { ChatTurn } from '../metering/tokens.js';
import type { ChatProvider, ChatRequest, ProviderEvent, ProviderFailure, ResponseFormat, ToolChoice } from './provider.js';
import { openAIMessage } from './image-parts.js';
import { classifyHttpFailure } from './refusals.js';
import { createNodeHttpFetch } from './node-http-fetch.js';
import { serverSentEvents } from './server-sent-events.js';

export type Upstream = OpenAI;

/** The `openai` SDK pointed at OpenAI or any compatible server. Retries are ours (see generation.ts). */
export function createUpstream(options: { apiKey: string; baseUrl?: string; timeoutMs: number }): Upstream {
  return new OpenAI({ apiKey: options.apiKey, baseURL: options.baseUrl, maxRetries: 0, timeout: options.timeoutMs, fetch: createNodeHttpFetch() });
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
    return classifyHttpFailure(error.status, providerErrorCode(error), error.headers, error.message);
  }
  if (error instanceof InBandStreamError) {
    return context.started
      ? { kind: 'cut', errorCode: error.code, message: 'The model provider reported an error mid-reply' }
      : { kind: 'server_error', errorCode: error.code, message: 'The model provider reported an error' };
  }
  if (error instanceof OpenAI.APIConnectionError && !context.started) {
    return { kind: 'connection', message: 'Could not reach the model provider' };
  }
  // A stream cut mid-way surfaces as a plain TypeError("terminated") from fetch.
  return context.started
    ? { kind: 'cut', message: 'The connection to the model provider broke off' }
    : { kind: 'connection', message: 'The connection to the model provider broke off' };
}

/** An error object sent inside a stream that had begun with HTTP 200. */
export class InBandStreamError extends Error {
  constructor(readonly code: string | undefined) {
    super('The model provider sent an error inside its stream');
  }
}

/** The fields of a Chat Completions chunk that are used; anything else in it is ignored. */
interface CompletionChunk {
  choices?: Array<{ delta?: { content?: string | null; tool_calls?: ToolCallChunk[] | null }; finish_reason?: string | null }>;
  usage?: CompletionUsage | null;
  error?: { code?: unknown; type?: unknown };
}

/** A piece of a streamed tool call: the first of a call has its id and name. */
interface ToolCallChunk {
  index?: number;
  id?: string | null;
  function?: { name?: string | null; arguments?: string | null };
}

/**
 * OpenAI's Chat Completions (and every server that speaks it) as a chat provider. The stream is
 * read here rather than by the SDK: an event that is not JSON (a proxy that mangled it) is
 * skipped instead of ending the reply, and its content never reaches a log.
 */
export function openAICompatibleProvider(client: Upstream): ChatProvider {
  return {
    async *stream(request, { signal, timeoutMs }) {
      const response = await client.chat.completions
        .create(
          {
            model: request.model,
            messages: request.prefill ? [...chatMessages(request.messages), { role: 'assistant', content: request.prefill }] : chatMessages(request.messages),
            ...outputParams(request),
            ...toolParams(request),
            stream: true,
            stream_options: { include_usage: true },
          },
          { signal, timeout: timeoutMs },
        )
        .asResponse();
      for await (const message of serverSentEvents(response)) {
        if (message.data === '[DONE]') return;
        const chunk = parseChunk(message.data);
        if (!chunk) {
          yield { type: 'progress' };
          continue;
        }
        if (chunk.error) throw new InBandStreamError(typeof chunk.error.code === 'string' ? chunk.error.code : typeof chunk.error.type === 'string' ? chunk.error.type : undefined);
        // The usage chunk that ends the stream has no choices.
        const choice = chunk.choices?.[0];
        const events: ProviderEvent[] = [];
        if (chunk.usage) events.push({ type: 'usage', usage: meteredUsage(chunk.usage) });
        if (choice?.delta?.content) events.push({ type: 'text', delta: choice.delta.content });
        for (const call of choice?.delta?.tool_calls ?? []) events.push(toolCallEvent(call));
        if (choice?.finish_reason) events.push({ type: 'finish', reason: choice.finish_reason });
        yield* events.length > 0 ? events : [{ type: 'progress' } as const];
      }
    },
    describeFailure: describeUpstreamFailure,
  };
}

function toolCallEvent(call: ToolCallChunk): ProviderEvent {
  return {
    type: 'tool_call',
    index: call.index ?? 0,
    ...(call.id ? { id: call.id } : {}),
    ...(call.function?.name ? { name: call.function.name } : {}),
    argumentsDelta: call.function?.arguments ?? '',
  };
}

/**
 * The turns in Chat Completions' terms: an assistant turn carries its `tool_calls` (its content
 * null when it wrote no text), a tool turn the `tool_call_id` it answers.
 */
function chatMessages(turns: ChatTurn[]): OpenAI.ChatCompletionMessageParam[] {
  return turns.map((turn): OpenAI.ChatCompletionMessageParam => {
    if (turn.role === 'assistant' && turn.toolCalls?.length) {
      return {
        role: 'assistant',
        content: turn.content || null,
        tool_calls: turn.toolCalls.map((call) => ({ id: call.id, type: 'function', function: { name: call.name, arguments: call.arguments } })),
      };
    }
    return openAIMessage(turn);
  });
}

/** OpenAI's `tools` and `tool_choice`; nothing when no tool is offered. */
function toolParams(request: ChatRequest): Record<string, unknown> {
  if (!request.tools?.length) return {};
  return {
    tools: request.tools.map((tool) => ({ type: 'function', function: tool })),
    tool_choice: toolChoiceParam(request.toolChoice ?? 'auto'),
  };
}

function toolChoiceParam(choice: ToolChoice): string | { type: 'function'; function: { name: string } } {
  return typeof choice === 'string' ? choice : { type: 'function', function: { name: choice.name } };
}

function parseChunk(data: string): CompletionChunk | undefined {
  try {
    const chunk: unknown = JSON.parse(data);
    return typeof chunk === 'object' && chunk !== null ? (chunk as CompletionChunk) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The output cap and sampling for the model. Reasoning models refuse `max_tokens` (they take
 * `max_completion_tokens`) and reject `temperature`, `top_p`, the penalties and `stop`, which are
 * then left out rather than failing the call; `reasoning_effort` goes to them alone.
 */
function outputParams(request: ChatRequest): Record<string, unknown> {
  const sampling = request.sampling ?? {};
  const given = (params: Record<string, unknown>) => Object.fromEntries(Object.entries(params).filter(([, value]) => value !== undefined));
  const response_format = responseFormatParam(request.responseFormat);
  if (request.reasoning) {
    return given({ max_completion_tokens: request.maxTokens, seed: sampling.seed, reasoning_effort: sampling.reasoningEffort, response_format });
  }
  return given({
    response_format,
    max_tokens: request.maxTokens,
    temperature: request.temperature,
    top_p: sampling.topP,
    stop: sampling.stop,
    seed: sampling.seed,
    presence_penalty: sampling.presencePenalty,
    frequency_penalty: sampling.frequencyPenalty,
  });
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

/** OpenAI's `response_format`; none for free text. */
function responseFormatParam(format: ResponseFormat | undefined): Record<string, unknown> | undefined {
  if (!format || format.type === 'text') return undefined;
  if (format.type === 'json_object') return { type: 'json_object' };
  return { type: 'json_schema', json_schema: { name: format.name, schema: format.schema, strict: format.strict } };
}
