import type { MeteredUsage } from '../metering/prices.js';
import type { ChatTurn } from '../metering/tokens.js';

/** What a reply asks of a provider, in no provider's wire format. */
export interface ChatRequest {
  /** The provider's own name for the model. */
  model: string;
  messages: ChatTurn[];
  maxTokens: number;
  temperature?: number;
  /** Reasoning models take a different output cap and no temperature. */
  reasoning: boolean;
}

/** One step of a provider's streamed answer, normalized. */
export type ProviderEvent =
  /** The provider sent something without text (a role, a ping): it is alive. */
  | { type: 'progress' }
  | { type: 'text'; delta: string }
  | { type: 'usage'; usage: MeteredUsage }
  | { type: 'finish'; reason: string };

export interface ProviderFailure {
  /** Worth another attempt if no token has reached anyone yet. */
  retryable: boolean;
  /** Seconds the provider asked us to wait (Retry-After), if any. */
  retryAfterSeconds?: number;
  /** Safe to show to the user: no keys, URLs or provider bodies. */
  message: string;
  status?: number;
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
  /** Classifies what the stream threw into something safe to store and show. */
  describeFailure(error: unknown, reason?: 'timeout'): ProviderFailure;
}
