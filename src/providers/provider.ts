import type { MeteredUsage } from '../metering/prices.js';
import type { ChatTurn } from '../metering/tokens.js';

/** A function the model may call: its arguments described by a JSON Schema object. */
export interface ToolDefinition {
  name: string;
  description?: string;
  parameters: Record<string, unknown>;
}

/** Whether the model may call tools (`auto`), must not (`none`), must call one (`required`), or must call the one named. */
export type ToolChoice = 'auto' | 'none' | 'required' | { name: string };

/** What a reply asks of a provider, in no provider's wire format. */
export interface ChatRequest {
  /** The provider's own name for the model. */
  model: string;
  messages: ChatTurn[];
  maxTokens: number;
  temperature?: number;
  /** Reasoning models take a different output cap and no temperature. */
  reasoning: boolean;
  /** Further sampling parameters; each provider kind passes on those its models take. */
  sampling?: Sampling;
  responseFormat?: ResponseFormat;
  /** Tools the model may call, and how it may; none offered when absent. */
  tools?: ToolDefinition[];
  toolChoice?: ToolChoice;
  /**
   * The start of the assistant's reply, sent as a trailing assistant turn that the provider
   * continues (a prefill). Only set for targets that accept one; the events then carry only
   * what follows it.
   */
  prefill?: string;
}

/** Sampling beyond temperature, as a client asked for it (validated before any call). */
export interface Sampling {
  topP?: number;
  /** At most 4 sequences that end the reply. */
  stop?: string[];
  seed?: number;
  presencePenalty?: number;
  frequencyPenalty?: number;
  /** For reasoning models only. */
  reasoningEffort?: 'low' | 'medium' | 'high';
}

/** The shape the reply must have: free text, any JSON object, or JSON that fits a schema. */
export type ResponseFormat =
  | { type: 'text' }
  | { type: 'json_object' }
  | { type: 'json_schema'; name: string; schema: Record<string, unknown>; strict: boolean };

/** One step of a provider's streamed answer, normalized. */
export type ProviderEvent =
  /** The provider sent something without text (a role, a ping): it is alive. */
  | { type: 'progress' }
  | { type: 'text'; delta: string }
  /**
   * A piece of a tool call: the call at `index` (from 0, in the order the model wrote them) begins
   * with its id and name, then its arguments' JSON text comes in pieces.
   */
  | { type: 'tool_call'; index: number; id?: string; name?: string; argumentsDelta: string }
  | { type: 'usage'; usage: MeteredUsage }
  | { type: 'finish'; reason: string };

/**
 * What went wrong, in terms the router acts on:
 * - `rate_limited` (429), `server_error` (5xx, Anthropic's 529), `connection` (refused or reset
 *   before an answer): worth another attempt, then the next deployment;
 * - `timeout`: silent or stalled; the same route is not tried again;
 * - `cut`: the stream broke off after it had begun (connection lost, an in-band error event,
 *   data that cannot be read);
 * - `context_length`: the prompt is too long for this model; only a larger fallback can help;
 * - `content_filter`: refused on policy grounds; the reply ends with CONTENT_FILTERED;
 * - `prefill_refused`: the target does not take an assistant prefill; restart without one;
 * - `credentials` (401/403), `not_found` (404, the model is unknown there): this deployment cannot
 *   serve, another may;
 * - `bad_request`: any other refusal of the request itself; no other attempt would do better.
 */
export type FailureKind =
  | 'rate_limited'
  | 'server_error'
  | 'connection'
  | 'timeout'
  | 'cut'
  | 'context_length'
  | 'content_filter'
  | 'prefill_refused'
  | 'credentials'
  | 'not_found'
  | 'bad_request';

export interface ProviderFailure {
  kind: FailureKind;
  /** Seconds the provider asked us to wait (Retry-After), if any. */
  retryAfterSeconds?: number;
  /** Safe to show to the user: no keys, URLs or provider bodies (a content-policy reason excepted). */
  message: string;
  status?: number;
  /** The provider's own error code or type (`context_length_exceeded`, `overloaded_error`), for the attempt record. */
  errorCode?: string;
}

/**
 * A provider kind behind one interface: it takes a normalized request and yields normalized
 * events. Retries, timeouts and failover sit above it and know nothing of its wire format.
 */
export interface ChatProvider {
  /**
   * Streams the answer. `signal` aborts it (the loop then simply ends); `timeoutMs` only bounds
   * the whole call, the caller's idle timer being the real timeout.
   */
  stream(request: ChatRequest, options: { signal: AbortSignal; timeoutMs: number }): AsyncIterable<ProviderEvent>;
  /**
   * Classifies what the stream threw into something safe to store and show. `reason: 'timeout'`
   * when the caller gave up waiting; `started` when the stream had already yielded text (a
   * connection lost then is a cut, not a refusal).
   */
  describeFailure(error: unknown, context?: { reason?: 'timeout'; started?: boolean }): ProviderFailure;
}
