import type { IncomingHttpHeaders, ServerResponse } from 'node:http';
import { describe, expect, it } from 'vitest';
import { anthropicProvider, createAnthropicClient } from '../src/providers/anthropic.js';
import { CONVERSATION_START } from '../src/providers/anthropic-request.js';
import type { ChatProvider, ChatRequest, ProviderEvent, ProviderFailure } from '../src/providers/provider.js';
import { startLocalServer } from './helpers/local-server.js';
import { MockUpstream } from './helpers/upstream.js';

const API_KEY = 'sk-ant-test-key-never-shown';

async function collect(events: AsyncIterable<ProviderEvent>, seen: ProviderEvent[] = []): Promise<ProviderEvent[]> {
  for await (const event of events) seen.push(event);
  return seen;
}

const textOf = (events: ProviderEvent[]) => events.flatMap((e) => (e.type === 'text' ? [e.delta] : [])).join('');

const request = (prompt: string, overrides: Partial<ChatRequest> = {}): ChatRequest => ({
  model: 'claude-sonnet-4-5',
  messages: [{ role: 'user', content: prompt }],
  maxTokens: 50,
  reasoning: false,
  ...overrides,
});

const stream = (provider: ChatProvider, req: ChatRequest, signal = new AbortController().signal) =>
  provider.stream(req, { signal, timeoutMs: 5_000 });

/** Streams the request to its failure: the events that came first, and how the provider classifies what it threw. */
async function failureOf(provider: ChatProvider, req: ChatRequest): Promise<{ events: ProviderEvent[]; failure: ProviderFailure }> {
  const events: ProviderEvent[] = [];
  const error = await collect(stream(provider, req), events).then(
    () => expect.unreachable('the stream should have failed'),
    (thrown: unknown) => thrown,
  );
  return { events, failure: provider.describeFailure(error, { started: events.some((e) => e.type === 'text') }) };
}

/** aimock's Anthropic route (`POST /v1/messages`), keyed by a unique prompt per test. */
async function aimockAnthropic() {
  const upstream = await MockUpstream.start();
  // The SDK appends /v1/messages to its base URL.
  const provider = anthropicProvider(createAnthropicClient({ apiKey: API_KEY, baseUrl: upstream.mock.url, timeoutMs: 5_000 }));
  return { upstream, provider };
}

/**
 * A stand-in for Anthropic's API that answers every request with what `answer` writes, and keeps
 * the requests as they came over the wire. For what aimock cannot send: cache token counts,
 * pings, thinking blocks, in-band errors, a stream that just stops.
 */
async function anthropicStandIn(answer: (res: ServerResponse) => void) {
  const received: Array<{ headers: IncomingHttpHeaders; body: Record<string, unknown> }> = [];
  const server = await startLocalServer((req, res) => {
    let raw = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => (raw += chunk));
    req.on('end', () => {
      received.push({ headers: req.headers, body: JSON.parse(raw) as Record<string, unknown> });
      res.writeHead(200, { 'content-type': 'text/event-stream', 'request-id': 'req_standin' });
      answer(res);
    });
  });
  const provider = anthropicProvider(createAnthropicClient({ apiKey: API_KEY, baseUrl: server.url, timeoutMs: 5_000 }));
  return { provider, received, stop: server.stop };
}

// A streamed answer shaped as in Anthropic's streaming documentation (extended thinking, then
// text), its first usage carrying cache writes and reads; event names and JSON as sent.
const MESSAGE_START = `event: message_start
data: {"type": "message_start", "message": {"id": "msg_01HCDu5LRGeP2o7s2xGmxyx8", "type": "message", "role": "assistant", "content": [], "model": "claude-sonnet-4-5-20250929", "stop_reason": null, "stop_sequence": null, "usage": {"input_tokens": 25, "cache_creation_input_tokens": 1200, "cache_read_input_tokens": 3400, "output_tokens": 1}}}

`;
const TRANSCRIPT = `${MESSAGE_START}event: content_block_start
data: {"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": "", "signature": ""}}

event: ping
data: {"type": "ping"}

event: content_block_delta
data: {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "The user greets me; I greet back."}}

event: content_block_delta
data: {"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds"}}

event: content_block_stop
data: {"type": "content_block_stop", "index": 0}

event: content_block_start
data: {"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}}

event: content_block_delta
data: {"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "Hello"}}

event: content_block_delta
data: {"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "!"}}

event: content_block_stop
data: {"type": "content_block_stop", "index": 1}

event: message_delta
data: {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": null}, "usage": {"output_tokens": 15}}

event: message_stop
data: {"type": "message_stop"}

`;

const TEXT_SO_FAR = `${MESSAGE_START}event: content_block_start
data: {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}

event: content_block_delta
data: {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Partial"}}

`;

const errorEvent = (type: string, message: string) =>
  `event: error\ndata: ${JSON.stringify({ type: 'error', error: { type, message } })}\n\n`;

describe('the Anthropic provider, against aimock', () => {
  it('streams a reply as text, then its usage and finish', async () => {
    const { upstream, provider } = await aimockAnthropic();
    const prompt = upstream.prompt({ content: 'one two three', usage: { input_tokens: 12, output_tokens: 5 } } as never, { chunkSize: 4 });

    const events = await collect(stream(provider, request(prompt)));

    expect(textOf(events)).toBe('one two three');
    expect(events.filter((e) => e.type === 'text').length).toBe(4);
    // aimock's Anthropic usage has no cache counts: they are zero here (see the transcript below).
    expect(events.slice(-2)).toEqual([
      { type: 'usage', usage: { promptTokens: 12, cachedTokens: 0, cacheWriteTokens: 0, completionTokens: 5, reasoningTokens: 0 } },
      { type: 'finish', reason: 'stop' },
    ]);
  });

  // aimock turns a fixture's OpenAI finish reason into Anthropic's stop reason (stop → end_turn,
  // length → max_tokens, tool_calls → tool_use) and passes any other through.
  it.each([
    ['stop', 'stop'],
    ['length', 'length'],
    ['tool_calls', 'tool_calls'],
    ['stop_sequence', 'stop'],
    ['refusal', 'content_filter'],
    ['model_context_window_exceeded', 'length'],
    ['pause_turn', 'pause_turn'],
  ])('reports a reply ended by %s as finished by %s', async (fixtureReason, expected) => {
    const { upstream, provider } = await aimockAnthropic();
    const prompt = upstream.prompt({ content: 'enough', finishReason: fixtureReason } as never);

    const events = await collect(stream(provider, request(prompt)));

    expect(events.filter((e) => e.type === 'finish')).toEqual([{ type: 'finish', reason: expected }]);
  });

  it('sends system turns as the system prompt and user and assistant turns alternating, the user first', async () => {
    const { upstream, provider } = await aimockAnthropic();
    const prompt = upstream.prompt({ content: 'Oui.' });

    await collect(
      stream(
        provider,
        request(prompt, {
          temperature: 0.4,
          messages: [
            { role: 'system', content: 'You are terse.' },
            { role: 'assistant', content: 'Hi! Ask me anything.' },
            { role: 'user', content: 'First question.' },
            { role: 'user', content: 'Second question.' },
            { role: 'assistant', content: 'Answers.' },
            { role: 'user', content: '  ' },
            { role: 'assistant', content: 'More answers.' },
            { role: 'system', content: 'Answer in French.' },
            { role: 'user', content: prompt },
          ],
        }),
      ),
    );

    // aimock journals the request translated back to the chat format: its system prompt as a first system turn.
    const [sent] = upstream.requestsFor(prompt) as Array<Record<string, unknown>>;
    expect(sent).toMatchObject({ model: 'claude-sonnet-4-5', max_tokens: 50, temperature: 0.4, stream: true });
    expect(sent?.messages).toEqual([
      { role: 'system', content: 'You are terse.\n\nAnswer in French.' },
      { role: 'user', content: CONVERSATION_START },
      { role: 'assistant', content: 'Hi! Ask me anything.' },
      { role: 'user', content: 'First question.\n\nSecond question.' },
      { role: 'assistant', content: 'Answers.\n\nMore answers.' },
      { role: 'user', content: prompt },
    ]);
  });

  // Anthropic refuses a final assistant turn ending in whitespace: the prefill goes without it,
  // and the reply, appended to the prefill as the caller holds it, reads as the model wrote it.
  it.each([
    { ending: 'a space the reply restores', prefill: 'Hello ', sent: 'Hello', reply: ' world', yielded: 'world' },
    { ending: 'a blank line the reply restores', prefill: 'Dear Ann,\n\n', sent: 'Dear Ann,', reply: '\n\nThank you.', yielded: 'Thank you.' },
    { ending: 'a blank line the reply restores in part', prefill: 'Dear Ann,\n\n', sent: 'Dear Ann,', reply: '\nThanks.\n\nBye.', yielded: 'Thanks.\n\nBye.' },
    { ending: 'a space the reply leaves out', prefill: 'Hello ', sent: 'Hello', reply: 'world', yielded: 'world' },
    { ending: 'a space, the reply beginning a new line', prefill: 'Hello ', sent: 'Hello', reply: '\nworld', yielded: '\nworld' },
    { ending: 'no whitespace', prefill: 'Hello', sent: 'Hello', reply: ' world', yielded: ' world' },
    { ending: 'only whitespace, sent as no turn at all', prefill: '  ', sent: undefined, reply: ' world', yielded: 'world' },
  ])('continues a prefill as a trailing assistant turn: one ending in $ending', async ({ prefill, sent, reply, yielded }) => {
    const { upstream, provider } = await aimockAnthropic();
    // One character per delta: the whitespace to drop spans several.
    const prompt = upstream.prompt({ content: reply }, { chunkSize: 1 });

    const events = await collect(stream(provider, request(prompt, { prefill })));

    expect(textOf(events)).toBe(yielded);
    const [request_] = upstream.requestsFor(prompt) as Array<{ messages: unknown[] }>;
    expect(request_?.messages.at(-1)).toEqual(sent === undefined ? { role: 'user', content: prompt } : { role: 'assistant', content: sent });
  });

  it("classifies a rate limit as such, with the Retry-After it was sent and none of the provider's text", async () => {
    const { upstream, provider } = await aimockAnthropic();
    const prompt = upstream.prompt({ error: { message: 'Number of request tokens has exceeded your rate limit', type: 'rate_limit_error' }, status: 429, retryAfter: 7 });

    const { failure } = await failureOf(provider, request(prompt));

    expect(failure).toEqual({
      kind: 'rate_limited',
      status: 429,
      errorCode: 'rate_limit_error',
      retryAfterSeconds: 7,
      message: 'The model provider is rate limiting requests (HTTP 429)',
    });
  });

  it.each([
    { status: 529, type: 'overloaded_error', said: 'Overloaded', kind: 'server_error' },
    { status: 500, type: 'api_error', said: 'Internal server error', kind: 'server_error' },
    { status: 400, type: 'invalid_request_error', said: 'prompt is too long: 208310 tokens > 200000 maximum', kind: 'context_length' },
    {
      status: 400,
      type: 'invalid_request_error',
      said: 'This model does not support assistant message prefill. The conversation must end with a user message.',
      kind: 'prefill_refused',
    },
    { status: 400, type: 'invalid_request_error', said: 'messages: roles must alternate between "user" and "assistant"', kind: 'bad_request' },
    { status: 401, type: 'authentication_error', said: 'invalid x-api-key', kind: 'credentials' },
    { status: 402, type: 'billing_error', said: 'Your credit balance is too low to access the Anthropic API.', kind: 'credentials' },
    { status: 403, type: 'permission_error', said: 'Your API key does not have permission to use the specified resource.', kind: 'credentials' },
    { status: 404, type: 'not_found_error', said: 'model: claude-nonexistent', kind: 'not_found' },
  ])('classifies HTTP $status $type ("$said") as $kind, without the provider\'s words or the key', async ({ status, type, said, kind }) => {
    const { upstream, provider } = await aimockAnthropic();
    const prompt = upstream.prompt({ error: { message: said, type }, status });

    const { failure } = await failureOf(provider, request(prompt));

    expect(failure).toMatchObject({ kind, status, errorCode: type });
    expect(failure.message).not.toContain(said);
    expect(JSON.stringify(failure)).not.toContain(API_KEY);
  });
});

describe('the Anthropic provider, against a recorded Anthropic stream', () => {
  it('meters the input as the uncached, cache-written and cache-read tokens together', async () => {
    const anthropic = await anthropicStandIn((res) => res.end(TRANSCRIPT));

    const events = await collect(stream(anthropic.provider, request('Hi')));

    // Thinking, signatures, pings and block boundaries are signs of life, not text.
    expect(textOf(events)).toBe('Hello!');
    expect(events.filter((e) => e.type === 'progress').length).toBe(9);
    expect(events.slice(-2)).toEqual([
      { type: 'usage', usage: { promptTokens: 25 + 1200 + 3400, cachedTokens: 3400, cacheWriteTokens: 1200, completionTokens: 15, reasoningTokens: 0 } },
      { type: 'finish', reason: 'stop' },
    ]);
  });

  it('takes cumulative input counts from message_delta when it carries them', async () => {
    const finalDelta = `event: message_delta
data: {"type": "message_delta", "delta": {"stop_reason": "max_tokens", "stop_sequence": null}, "usage": {"input_tokens": 40, "cache_creation_input_tokens": 1200, "cache_read_input_tokens": 3400, "output_tokens": 50}}

event: message_stop
data: {"type": "message_stop"}

`;
    const anthropic = await anthropicStandIn((res) => res.end(TEXT_SO_FAR + finalDelta));

    const events = await collect(stream(anthropic.provider, request('Hi')));

    expect(events.slice(-2)).toEqual([
      { type: 'usage', usage: { promptTokens: 40 + 1200 + 3400, cachedTokens: 3400, cacheWriteTokens: 1200, completionTokens: 50, reasoningTokens: 0 } },
      { type: 'finish', reason: 'length' },
    ]);
  });

  it('sends the system prompt, alternating turns and the key as the SDK does', async () => {
    const anthropic = await anthropicStandIn((res) => res.end(TRANSCRIPT));

    await collect(
      stream(
        anthropic.provider,
        request('Hi', {
          messages: [
            { role: 'system', content: 'Be kind.' },
            { role: 'user', content: 'Hi' },
            { role: 'user', content: 'Anyone there?' },
          ],
          prefill: 'Yes, ',
        }),
      ),
    );

    const [sent] = anthropic.received;
    expect(sent?.body).toEqual({
      model: 'claude-sonnet-4-5',
      max_tokens: 50,
      system: 'Be kind.',
      messages: [
        { role: 'user', content: 'Hi\n\nAnyone there?' },
        { role: 'assistant', content: 'Yes,' },
      ],
      stream: true,
    });
    // SDK 1.16 sends the key as a bearer token; Anthropic's API also takes it as x-api-key.
    expect(`${sent?.headers.authorization} ${sent?.headers['x-api-key']}`).toContain(API_KEY);
  });

  it('reports an error event after text as a cut, with Anthropic\'s error type', async () => {
    const anthropic = await anthropicStandIn((res) => res.end(TEXT_SO_FAR + errorEvent('overloaded_error', 'Overloaded')));

    const { events, failure } = await failureOf(anthropic.provider, request('Hi'));

    expect(textOf(events)).toBe('Partial');
    expect(failure).toEqual({ kind: 'cut', errorCode: 'overloaded_error', message: 'The model provider reported an error mid-reply' });
  });

  it.each([
    { type: 'overloaded_error', kind: 'server_error' },
    { type: 'api_error', kind: 'server_error' },
    { type: 'rate_limit_error', kind: 'rate_limited' },
    { type: 'invalid_request_error', kind: 'bad_request' },
  ])('reports an error event $type before any text as $kind', async ({ type, kind }) => {
    const anthropic = await anthropicStandIn((res) => res.end(MESSAGE_START + errorEvent(type, 'Something went wrong upstream')));

    const { events, failure } = await failureOf(anthropic.provider, request('Hi'));

    expect(textOf(events)).toBe('');
    expect(failure).toMatchObject({ kind, errorCode: type });
    expect(failure.message).not.toContain('Something went wrong');
  });

  it('reports a stream that ends before message_stop as a cut, not as a finished reply', async () => {
    const anthropic = await anthropicStandIn((res) => res.end(TEXT_SO_FAR));

    const { events, failure } = await failureOf(anthropic.provider, request('Hi'));

    expect(textOf(events)).toBe('Partial');
    expect(events.some((e) => e.type === 'finish')).toBe(false);
    expect(failure).toMatchObject({ kind: 'cut' });
  });

  it('reports a connection lost mid-reply as a cut, after the text that came', async () => {
    let response: ServerResponse | undefined;
    const anthropic = await anthropicStandIn((res) => {
      response = res;
      res.write(TEXT_SO_FAR);
    });
    const events: ProviderEvent[] = [];

    const error = await (async () => {
      for await (const event of stream(anthropic.provider, request('Hi'))) {
        events.push(event);
        if (event.type === 'text') response?.destroy();
      }
    })().then(
      () => expect.unreachable('the stream should have failed'),
      (thrown: unknown) => thrown,
    );

    expect(textOf(events)).toBe('Partial');
    expect(events.some((e) => e.type === 'usage' || e.type === 'finish')).toBe(false);
    expect(anthropic.provider.describeFailure(error, { started: true })).toEqual({ kind: 'cut', message: 'The connection to the model provider broke off' });
  });

  it('ends quietly when the caller aborts mid-reply', async () => {
    // The stand-in sends some text, then holds the stream open.
    const anthropic = await anthropicStandIn((res) => res.write(TEXT_SO_FAR));
    const controller = new AbortController();
    const events: ProviderEvent[] = [];

    for await (const event of stream(anthropic.provider, request('Hi'), controller.signal)) {
      events.push(event);
      if (event.type === 'text') controller.abort();
    }

    expect(textOf(events)).toBe('Partial');
    expect(events.at(-1)).toEqual({ type: 'text', delta: 'Partial' });
  });

  it('reports a provider it cannot reach as a connection failure', async () => {
    const anthropic = await anthropicStandIn((res) => res.end(TRANSCRIPT));
    await anthropic.stop();

    const { failure } = await failureOf(anthropic.provider, request('Hi'));

    expect(failure).toEqual({ kind: 'connection', message: 'Could not reach the model provider' });
  });

  it('reports a provider that does not answer in time as a timeout', async () => {
    // Neither headers nor body: the SDK's own timeout ends the request.
    const silent = await startLocalServer(() => undefined);
    const provider = anthropicProvider(createAnthropicClient({ apiKey: API_KEY, baseUrl: silent.url, timeoutMs: 300 }));

    const error = await collect(provider.stream(request('Hi'), { signal: new AbortController().signal, timeoutMs: 300 })).then(
      () => expect.unreachable('the stream should have failed'),
      (thrown: unknown) => thrown,
    );

    expect(provider.describeFailure(error)).toEqual({ kind: 'timeout', message: 'The model provider did not respond in time' });
    // The caller's own idle timer says so too.
    expect(provider.describeFailure(undefined, { reason: 'timeout' })).toMatchObject({ kind: 'timeout' });
  });
});
