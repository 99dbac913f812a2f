import OpenAI from 'openai';

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

export interface UpstreamFailure {
  /** Worth another attempt if no token has reached anyone yet. */
  retryable: boolean;
  /** Seconds the upstream asked us to wait (Retry-After), if any. */
  retryAfterSeconds?: number;
  /** Safe to show to the user: no keys, URLs or upstream bodies. */
  message: string;
  status?: number;
}

/** Classifies what the SDK threw into something safe to store and show. */
export function describeUpstreamFailure(error: unknown, reason?: 'timeout'): UpstreamFailure {
  if (reason === 'timeout' || error instanceof OpenAI.APIConnectionTimeoutError) {
    return { retryable: true, message: 'The model provider did not respond in time' };
  }
  if (error instanceof OpenAI.APIError && typeof error.status === 'number') {
    const status = error.status;
    if (status === 429) {
      const retryAfter = Number(error.headers?.get?.('retry-after'));
      return {
        retryable: true,
        status,
        retryAfterSeconds: Number.isFinite(retryAfter) ? retryAfter : undefined,
        message: 'The model provider is rate limiting requests (HTTP 429)',
      };
    }
    if (status >= 500) return { retryable: true, status, message: `The model provider failed (HTTP ${status})` };
    if (status === 401 || status === 403) {
      return { retryable: false, status, message: 'The model provider refused the server credentials' };
    }
    return { retryable: false, status, message: `The model provider rejected the request (HTTP ${status})` };
  }
  if (error instanceof OpenAI.APIConnectionError) {
    return { retryable: true, message: 'Could not reach the model provider' };
  }
  // A stream cut mid-way surfaces as a plain TypeError("terminated") from fetch.
  return { retryable: true, message: 'The connection to the model provider broke off' };
}
