import type { ProviderFailure } from './provider.js';

// Providers word these refusals differently: OpenAI's `context_length_exceeded`, Anthropic's
// "prompt is too long: 208310 tokens > 200000 maximum" and "input length and `max_tokens`
// exceed context limit", Anthropic's "does not support assistant message prefill".
const CONTEXT_LENGTH = /context_length|context length|context limit|too many tokens|prompt is too long|maximum context/;
// Anthropic: "Output blocked by content filtering policy".
const CONTENT_POLICY = /content_policy|content_filter|content filtering|content management policy|safety system/;
const PREFILL = /prefill/;

/**
 * An HTTP error status from either provider kind, with the provider's error code and message:
 * a rate limit (with its Retry-After), a failure of the provider (5xx, Anthropic's 529), a key or
 * account it refuses (401, 402 for Anthropic's billing_error, 403), a model it does not serve
 * (404), or a refusal of the request itself.
 */
export function classifyHttpFailure(status: number, errorCode: string | undefined, headers: Headers | undefined, providerMessage: string): ProviderFailure {
  if (status === 429) {
    return { kind: 'rate_limited', status, errorCode, retryAfterSeconds: retryAfterSeconds(headers), message: 'The model provider is rate limiting requests (HTTP 429)' };
  }
  if (status === 529) return { kind: 'server_error', status, errorCode, message: 'The model provider is overloaded (HTTP 529)' };
  if (status >= 500) return { kind: 'server_error', status, errorCode, message: `The model provider failed (HTTP ${status})` };
  if (status === 401 || status === 403) {
    return { kind: 'credentials', status, errorCode, message: 'The model provider refused the server credentials' };
  }
  // This account cannot be served now; another deployment may.
  if (status === 402) return { kind: 'credentials', status, errorCode, message: 'The model provider refused the server account (HTTP 402)' };
  if (status === 404) return { kind: 'not_found', status, errorCode, message: 'The model provider does not serve this model (HTTP 404)' };
  return classifyRefusal(status, errorCode, providerMessage);
}

/** Retry-After in seconds; an HTTP date or a missing header gives none. */
function retryAfterSeconds(headers: Headers | undefined): number | undefined {
  const value = headers?.get('retry-after');
  const seconds = value ? Number(value) : Number.NaN;
  return Number.isFinite(seconds) && seconds >= 0 ? seconds : undefined;
}

/**
 * A 4xx about the request itself: too long for the model, refused by a content policy (whose
 * reason the user may see), a prefill the model does not take, or anything else.
 */
export function classifyRefusal(status: number | undefined, errorCode: string | undefined, providerMessage: string): ProviderFailure {
  const said = `${errorCode ?? ''} ${providerMessage}`.toLowerCase();
  const shown = status === undefined ? '' : ` (HTTP ${status})`;
  if (CONTEXT_LENGTH.test(said)) {
    return { kind: 'context_length', status, errorCode, message: 'The conversation is too long for the model' };
  }
  if (CONTENT_POLICY.test(said)) {
    return { kind: 'content_filter', status, errorCode, message: `The model provider refused the request on policy grounds: ${policyReason(providerMessage)}` };
  }
  if (PREFILL.test(said)) {
    return { kind: 'prefill_refused', status, errorCode, message: 'The model does not accept the start of a reply' };
  }
  return { kind: 'bad_request', status, errorCode, message: `The model provider rejected the request${shown}` };
}

/** The provider's own words on a policy refusal, bounded and on one line; the user needs them to rephrase. */
function policyReason(providerMessage: string): string {
  const line = providerMessage.replace(/^\d{3}\s+/, '').replace(/\s+/g, ' ').trim();
  return line.length > 300 ? `${line.slice(0, 297)}...` : line || 'no reason given';
}
