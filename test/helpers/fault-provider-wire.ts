/**
 * The two wire shapes the fault provider speaks, as text only (it knows nothing of sockets or
 * timing): OpenAI Chat Completions and Anthropic Messages. Each turns a request body into what
 * the faults need and formats errors, stream events and whole answers.
 */

export type WireShape = 'openai' | 'anthropic';

/** What the provider needs to know of a chat request, whatever its shape. */
export interface ChatAsk {
  model: string;
  stream: boolean;
  /** OpenAI's stream_options.include_usage; an Anthropic stream always carries usage. */
  includeUsage: boolean;
  lastRole: string | null;
  /** The text of a trailing assistant message, if the request ends with one. */
  prefill: string | null;
  /** Words plus 4 per message (the system prompt counting as one): deterministic, not a tokenizer. */
  promptTokens: number;
}

export interface CacheTokens {
  readTokens: number;
  writeTokens: number;
}

/** Reads a parsed request body; undefined when it has no model or no messages. */
export function readChatAsk(shape: WireShape, body: unknown): ChatAsk | undefined {
  if (!isRecord(body) || typeof body.model !== 'string' || !Array.isArray(body.messages)) return undefined;
  const messages = body.messages.filter(isRecord);
  const texts = messages.map((m) => contentText(m.content));
  if (shape === 'anthropic' && body.system !== undefined) texts.push(contentText(body.system));
  const last = messages.at(-1);
  const lastRole = typeof last?.role === 'string' ? last.role : null;
  const options = isRecord(body.stream_options) ? body.stream_options : {};
  return {
    model: body.model,
    stream: body.stream === true,
    includeUsage: shape === 'anthropic' || options.include_usage === true,
    lastRole,
    prefill: lastRole === 'assistant' ? contentText(last!.content) : null,
    promptTokens: texts.reduce((sum, text) => sum + countWords(text) + 4, 0),
  };
}

export type Refusal =
  | 'rate_limited'
  | 'server_error'
  | 'overloaded'
  | 'context_length'
  | 'content_filter'
  | 'prefill_refused'
  | 'not_found'
  | 'unauthorized'
  | 'bad_request';

export const PREFILL_REFUSAL_MESSAGE =
  'This model does not support assistant message prefill. The conversation must end with a user message.';

interface RefusalText {
  status: number;
  type: string;
  code: string | null;
  param: string | null;
  message: string;
}

const openAIRefusals: Record<Refusal, RefusalText> = {
  rate_limited: { status: 429, type: 'requests', code: 'rate_limit_exceeded', param: null, message: 'Rate limit reached for requests. Please try again later.' },
  server_error: { status: 500, type: 'server_error', code: null, param: null, message: 'The server had an error while processing your request.' },
  overloaded: { status: 503, type: 'server_error', code: 'overloaded', param: null, message: 'The engine is currently overloaded. Please try again later.' },
  context_length: {
    status: 400,
    type: 'invalid_request_error',
    code: 'context_length_exceeded',
    param: 'messages',
    message: "This model's maximum context length is 8192 tokens. However, your messages resulted in 9631 tokens. Please reduce the length of the messages.",
  },
  content_filter: { status: 400, type: 'invalid_request_error', code: 'content_policy_violation', param: null, message: 'Your request was rejected as a result of our safety system.' },
  prefill_refused: { status: 400, type: 'invalid_request_error', code: 'invalid_prefill', param: 'messages', message: PREFILL_REFUSAL_MESSAGE },
  not_found: { status: 404, type: 'invalid_request_error', code: 'model_not_found', param: 'model', message: 'The model does not exist or you do not have access to it.' },
  unauthorized: { status: 401, type: 'invalid_request_error', code: 'invalid_api_key', param: null, message: 'Incorrect API key provided.' },
  bad_request: { status: 400, type: 'invalid_request_error', code: null, param: null, message: 'The request needs a model and a messages array.' },
};

// Anthropic's own status codes and texts: 529 for overload, no error codes beside the type.
const anthropicRefusals: Record<Refusal, Omit<RefusalText, 'code' | 'param'>> = {
  rate_limited: { status: 429, type: 'rate_limit_error', message: 'Number of requests has exceeded your rate limit. Please try again later.' },
  server_error: { status: 500, type: 'api_error', message: 'Internal server error' },
  overloaded: { status: 529, type: 'overloaded_error', message: 'Overloaded' },
  context_length: { status: 400, type: 'invalid_request_error', message: 'prompt is too long: 9631 tokens > 8192 maximum' },
  content_filter: { status: 400, type: 'invalid_request_error', message: 'Output blocked by content filtering policy' },
  prefill_refused: { status: 400, type: 'invalid_request_error', message: PREFILL_REFUSAL_MESSAGE },
  not_found: { status: 404, type: 'not_found_error', message: 'model: not found' },
  unauthorized: { status: 401, type: 'authentication_error', message: 'invalid x-api-key' },
  bad_request: { status: 400, type: 'invalid_request_error', message: 'The request needs a model and a messages array.' },
};

/** An error response: its status, its body, and a short label for the journal (`429 rate_limit_exceeded`). */
export function refusalReply(shape: WireShape, refusal: Refusal): { status: number; body: object; label: string } {
  if (shape === 'openai') {
    const { status, type, code, param, message } = openAIRefusals[refusal];
    return { status, body: { error: { message, type, param, code } }, label: `${status} ${code ?? type}` };
  }
  const { status, type, message } = anthropicRefusals[refusal];
  return { status, body: { type: 'error', error: { type, message } }, label: `${status} ${type}` };
}

export interface AnswerContext {
  id: string;
  model: string;
  includeUsage: boolean;
  promptTokens: number;
  cache: CacheTokens;
}

/** The events of a streamed answer, each a complete piece of SSE text. */
export interface AnswerEvents {
  /** Before the first token: OpenAI's role chunk; Anthropic's message_start, content_block_start and a ping. */
  opening(): string;
  token(text: string): string;
  /** An event whose data is invalid JSON, framed like a token's. */
  malformed(): string;
  /** After the last token: the finish and, when asked for, the usage. */
  closing(completionTokens: number): string;
  /** The end-of-stream sentinel: `[DONE]`, or Anthropic's message_stop. */
  sentinel(): string;
  /** An error inside the stream, as each provider sends one. */
  inbandError(): string;
}

export function answerEvents(shape: WireShape, answer: AnswerContext): AnswerEvents {
  return shape === 'openai' ? openAIEvents(answer) : anthropicEvents(answer);
}

function openAIEvents({ id, model, includeUsage, promptTokens }: AnswerContext): AnswerEvents {
  const created = Math.floor(Date.now() / 1000);
  const chunk = (choices: object[], extra: object = {}) =>
    data({ id, object: 'chat.completion.chunk', created, model, choices, ...extra });
  const choice = (delta: object, finishReason: string | null = null) => ({ index: 0, delta, logprobs: null, finish_reason: finishReason });
  return {
    opening: () => chunk([choice({ role: 'assistant', content: '' })]),
    token: (text) => chunk([choice({ content: text })]),
    malformed: () => `data: {"id":"${id}","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":\n\n`,
    closing: (completionTokens) =>
      chunk([choice({}, 'stop')]) +
      (includeUsage ? chunk([], { usage: openAIUsage(promptTokens, completionTokens) }) : ''),
    sentinel: () => 'data: [DONE]\n\n',
    inbandError: () => data({ error: { message: 'The server had an error while processing your request.', type: 'server_error', param: null, code: null } }),
  };
}

function anthropicEvents({ id, model, promptTokens, cache }: AnswerContext): AnswerEvents {
  const usage = (outputTokens: number) => anthropicUsage(promptTokens, cache, outputTokens);
  return {
    opening: () =>
      // Like the real API, message_start counts one output token; message_delta has the total.
      event('message_start', {
        type: 'message_start',
        message: { id, type: 'message', role: 'assistant', model, content: [], stop_reason: null, stop_sequence: null, usage: usage(1) },
      }) +
      event('content_block_start', { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } }) +
      event('ping', { type: 'ping' }),
    token: (text) => event('content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text } }),
    malformed: () => 'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":\n\n',
    closing: (completionTokens) =>
      event('content_block_stop', { type: 'content_block_stop', index: 0 }) +
      event('message_delta', { type: 'message_delta', delta: { stop_reason: 'end_turn', stop_sequence: null }, usage: usage(completionTokens) }),
    sentinel: () => event('message_stop', { type: 'message_stop' }),
    inbandError: () => event('error', { type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } }),
  };
}

/** A non-streamed answer: the whole text at once. */
export function wholeAnswer(shape: WireShape, answer: AnswerContext, text: string, completionTokens: number): object {
  if (shape === 'openai') {
    return {
      id: answer.id,
      object: 'chat.completion',
      created: Math.floor(Date.now() / 1000),
      model: answer.model,
      choices: [{ index: 0, message: { role: 'assistant', content: text, refusal: null }, logprobs: null, finish_reason: 'stop' }],
      usage: openAIUsage(answer.promptTokens, completionTokens),
    };
  }
  return {
    id: answer.id,
    type: 'message',
    role: 'assistant',
    model: answer.model,
    content: [{ type: 'text', text }],
    stop_reason: 'end_turn',
    stop_sequence: null,
    usage: anthropicUsage(answer.promptTokens, answer.cache, completionTokens),
  };
}

const openAIUsage = (promptTokens: number, completionTokens: number) => ({
  prompt_tokens: promptTokens,
  completion_tokens: completionTokens,
  total_tokens: promptTokens + completionTokens,
});

// Anthropic counts cached tokens apart from input_tokens: the configured cache figures come on top.
const anthropicUsage = (promptTokens: number, cache: CacheTokens, outputTokens: number) => ({
  input_tokens: promptTokens,
  cache_creation_input_tokens: cache.writeTokens,
  cache_read_input_tokens: cache.readTokens,
  output_tokens: outputTokens,
});

const data = (payload: object) => `data: ${JSON.stringify(payload)}\n\n`;
const event = (name: string, payload: object) => `event: ${name}\ndata: ${JSON.stringify(payload)}\n\n`;

function contentText(content: unknown): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  return content.map((part) => (isRecord(part) && typeof part.text === 'string' ? part.text : '')).join('');
}

const countWords = (text: string) => text.split(/\s+/).filter(Boolean).length;

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
