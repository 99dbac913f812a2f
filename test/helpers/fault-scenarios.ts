/**
 * The faults the fault provider (fault-provider.ts) injects, chosen by model name. The S01–S16
 * scenarios follow the public failoverbench catalogue (its model names included, so its runner's
 * configuration works unchanged); X01 is ours.
 */

/**
 * What every healthy answer says. Sixty words, one token each: an answer cut after 40 tokens
 * can never pass for the whole.
 */
export const CANONICAL_ANSWER =
  'Switchboard keeps a conversation alive when the provider behind it stumbles. A rate limit, a reset ' +
  'connection, a stream that stops halfway or an event full of garbage must never reach the person ' +
  'waiting as a broken reply. This answer holds exactly sixty words, so a reply that lost even a ' +
  'single word on its way shows that at once.';

/**
 * The tokens a text is streamed as: each word with the whitespace before it, so that the tokens
 * joined give the text back exactly (a continuation starts with its space).
 */
export function answerTokens(text: string): string[] {
  return text.match(/\s*\S+/g) ?? [];
}

export type Fault =
  | 'ok'
  | 'ok_noprefill'
  | 'rate_limited_once'
  | 'rate_limited'
  | 'server_error_once'
  | 'overloaded'
  | 'reset_once'
  | 'no_response'
  | 'slow_first_token'
  | 'stream_cut'
  | 'stream_stall'
  | 'malformed_event'
  | 'no_done'
  | 'context_length'
  | 'content_filter'
  | 'flap'
  | 'inband_error';

export const HEALTHY_MODEL = 'fb-ok';
/** Healthy, but refuses a request that ends with an assistant message (a prefill) with a 400. */
export const NO_PREFILL_MODEL = 'fb-ok-noprefill';

export interface FaultScenario {
  id: string;
  model: string;
  fault: Fault;
  description: string;
  /** Where a gateway should fail over to in this scenario. */
  fallbackModel: string;
}

const scenario = (id: string, model: string, fault: Fault, description: string, fallbackModel = HEALTHY_MODEL): FaultScenario => ({
  id,
  model,
  fault,
  description,
  fallbackModel,
});

/** Timings in the descriptions are the names of the provider's FaultTimings. */
export const FAULT_SCENARIOS: readonly FaultScenario[] = [
  scenario('S01', 'fb-s01-429-retry-after', 'rate_limited_once', 'First attempt: 429 with Retry-After (retryAfterSeconds); later attempts healthy.'),
  scenario('S02', 'fb-s02-429-persistent', 'rate_limited', 'Every attempt: 429 without Retry-After.'),
  scenario('S03', 'fb-s03-500-then-200', 'server_error_once', 'First attempt: 500; later attempts healthy.'),
  scenario('S04', 'fb-s04-503-persistent', 'overloaded', 'Every attempt: 503 overloaded (529 overloaded_error on the Anthropic shape).'),
  scenario('S05', 'fb-s05-reset', 'reset_once', 'First attempt: the connection is reset (TCP RST) before any response byte; later attempts healthy.'),
  scenario('S06', 'fb-s06-no-response', 'no_response', 'No headers, no bytes, until the client gives up or noResponseMs passes; then the connection closes.'),
  scenario('S07', 'fb-s07-slow-ttft', 'slow_first_token', 'Headers at once, the first token after slowFirstTokenMs, the rest at the normal pace.'),
  scenario('S08', 'fb-s08-stream-cut', 'stream_cut', 'The stream dies after cutAfterTokens tokens: connection closed, no finish, no usage, no terminating chunk.'),
  scenario('S09', 'fb-s09-stream-stall', 'stream_stall', 'After stallAfterTokens tokens the stream goes silent for stallMs with the connection open, then it closes.'),
  scenario('S10', 'fb-s10-malformed-chunk', 'malformed_event', 'An event of invalid JSON before token malformedAtToken; the stream otherwise completes.'),
  scenario('S11', 'fb-s11-no-done', 'no_done', 'A complete stream with usage and a proper HTTP end, but no [DONE] (no message_stop on the Anthropic shape).'),
  scenario('S12', 'fb-s12-context-length', 'context_length', 'Every attempt: 400 context_length_exceeded.'),
  scenario('S13', 'fb-s13-content-filter', 'content_filter', 'Every attempt: 400 content_policy_violation.'),
  scenario('S14', 'fb-s14-stream-cut', 'stream_cut', 'The S08 cut, with a fallback that refuses an assistant prefill.', NO_PREFILL_MODEL),
  scenario('S15', 'fb-s15-flap', 'flap', '503 (529) for the first flapDownMs after start or reset, healthy afterwards.'),
  scenario('S16', 'fb-s16-503-persistent', 'overloaded', 'The S04 fault, where the fallback\'s model name and usage are what the caller must see.'),
  scenario('X01', 'fb-x01-inband-error', 'inband_error', 'After inbandErrorAfterTokens tokens an error inside the 200 stream (OpenAI data: {"error"}, Anthropic event: error), then the end.'),
];

const faultsByTag = new Map(FAULT_SCENARIOS.map((s) => [s.id.toLowerCase(), s.fault]));

/**
 * The fault a model name asks for: `fb-ok`, `fb-ok-noprefill`, or `fb-<id>-<anything>` with a
 * scenario id (`fb-s08-whatever`). A provider prefix (`openai/fb-ok`) is ignored, as gateways add one.
 */
export function faultOf(model: string): Fault | undefined {
  const name = model.slice(model.lastIndexOf('/') + 1).trim().toLowerCase();
  if (name === HEALTHY_MODEL) return 'ok';
  if (name === NO_PREFILL_MODEL) return 'ok_noprefill';
  const match = /^fb-([a-z]\d\d)(?:-|$)/.exec(name);
  return match ? faultsByTag.get(match[1]!) : undefined;
}
