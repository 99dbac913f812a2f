import { connect } from 'node:net';
import { performance } from 'node:perf_hooks';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { describe, expect, it } from 'vitest';
import {
  answerTokens,
  CANONICAL_ANSWER,
  FAULT_SCENARIOS,
  faultOf,
  PREFILL_REFUSAL_MESSAGE,
  startFaultProvider,
  type FaultProvider,
  type FaultProviderOptions,
} from './helpers/fault-provider.js';

const PROMPT = 'Explain in sixty words why failover matters.';
const SYSTEM = 'Answer plainly.';
// Words plus 4 per message, the system prompt counting as one.
const PROMPT_TOKENS = 7 + 4;
const SYSTEM_TOKENS = 2 + 4;
const words = (count: number) => answerTokens(CANONICAL_ANSWER).slice(0, count).join('');

function clients(provider: FaultProvider, maxRetries = 0) {
  // logLevel off: the SDKs log a malformed event before throwing, which would clutter the output.
  const openai = new OpenAI({ baseURL: provider.baseUrl, apiKey: 'sk-test', maxRetries, logLevel: 'off' });
  const anthropic = new Anthropic({ baseURL: provider.anthropicBaseUrl, apiKey: 'sk-ant-test', maxRetries, logLevel: 'off' });
  return { openai, anthropic };
}

async function start(options: FaultProviderOptions = {}) {
  const provider = await startFaultProvider({ ...options, timings: { tokenIntervalMs: 1, ...options.timings } });
  return { provider, ...clients(provider) };
}

/** Streams through the openai SDK; what it read before it ended or threw. */
async function openAIStream(openai: OpenAI, model: string, messages: OpenAI.ChatCompletionMessageParam[] = [{ role: 'user', content: PROMPT }]) {
  let text = '';
  let usage: OpenAI.CompletionUsage | undefined;
  let finishReason: string | null | undefined;
  let error: unknown;
  try {
    const stream = await openai.chat.completions.create({ model, messages, stream: true, stream_options: { include_usage: true } });
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? '';
      finishReason ??= chunk.choices[0]?.finish_reason;
      if (chunk.usage) {
        expect(chunk.choices).toEqual([]);
        usage = chunk.usage;
      }
    }
  } catch (caught) {
    error = caught;
  }
  return { text, usage, finishReason, error };
}

/** Streams through @anthropic-ai/sdk's create({ stream: true }); the events it yielded, and what it threw. */
async function anthropicEvents(anthropic: Anthropic, model: string, messages: Anthropic.MessageParam[] = [{ role: 'user', content: PROMPT }]) {
  const events: Anthropic.RawMessageStreamEvent[] = [];
  let error: unknown;
  try {
    const stream = await anthropic.messages.create({ model, max_tokens: 200, system: SYSTEM, messages, stream: true });
    for await (const event of stream) events.push(event);
  } catch (caught) {
    error = caught;
  }
  const text = events.map((e) => (e.type === 'content_block_delta' && e.delta.type === 'text_delta' ? e.delta.text : '')).join('');
  return { events, text, error };
}

function post(provider: FaultProvider, shape: 'openai' | 'anthropic', body: object, headers: Record<string, string> = { authorization: 'Bearer sk-test' }, signal?: AbortSignal) {
  const url = shape === 'openai' ? `${provider.baseUrl}/chat/completions` : `${provider.anthropicBaseUrl}/v1/messages`;
  return fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body), signal });
}

const openAIBody = (model: string) => ({ model, stream: true, stream_options: { include_usage: true }, messages: [{ role: 'user', content: PROMPT }] });
const anthropicBody = (model: string) => ({ model, max_tokens: 200, stream: true, messages: [{ role: 'user', content: PROMPT }] });

/** Reads a response body to its end or its failure, noting when each piece arrived. */
async function readBody(response: Response, onText: (text: string) => void = () => {}) {
  const reader = response.body!.getReader();
  const decoder = new TextDecoder();
  let text = '';
  let lastDataAt = performance.now();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return { text, lastDataAt, endedAt: performance.now(), error: undefined };
      text += decoder.decode(value, { stream: true });
      lastDataAt = performance.now();
      onText(text);
    }
  } catch (error) {
    return { text, lastDataAt, endedAt: performance.now(), error };
  }
}

/** The data of each SSE event, in order. */
const sseData = (text: string) =>
  text
    .split('\n\n')
    .map((block) => block.split('\n').find((line) => line.startsWith('data: '))?.slice('data: '.length))
    .filter((data): data is string => data !== undefined);

const contentOf = (data: string[]) =>
  data
    .filter((d) => d !== '[DONE]')
    .map((d) => JSON.parse(d) as { choices: Array<{ delta: { content?: string } }> })
    .map((chunk) => chunk.choices[0]?.delta.content ?? '')
    .join('');

describe('the fault provider, healthy', () => {
  it('streams the canonical answer to the openai SDK, with usage last, and journals the attempt', async () => {
    const { provider, openai } = await start();

    const result = await openAIStream(openai, 'fb-ok', [{ role: 'system', content: SYSTEM }, { role: 'user', content: PROMPT }]);

    expect(result).toMatchObject({ text: CANONICAL_ANSWER, finishReason: 'stop', error: undefined });
    expect(result.usage).toEqual({ prompt_tokens: SYSTEM_TOKENS + PROMPT_TOKENS, completion_tokens: 60, total_tokens: SYSTEM_TOKENS + PROMPT_TOKENS + 60 });
    await provider.waitForIdle();
    expect(provider.journal()).toEqual([
      {
        t: expect.any(Number),
        model: 'fb-ok',
        shape: 'openai',
        attempt: 1,
        stream: true,
        lastRole: 'user',
        prefill: null,
        action: '200 stream',
        promptTokens: SYSTEM_TOKENS + PROMPT_TOKENS,
        completionTokensSent: 60,
      },
    ]);
  });

  it('speaks Anthropic Messages: message_start with the configured cache figures, text deltas, message_delta with the cumulative usage', async () => {
    const { provider, anthropic } = await start({ cache: { readTokens: 120, writeTokens: 30 } });

    const { events, text, error } = await anthropicEvents(anthropic, 'fb-ok');

    expect(error).toBeUndefined();
    expect(text).toBe(CANONICAL_ANSWER);
    // The SDK drops the ping; the rest comes in the API's order.
    expect(events.map((e) => e.type)).toEqual([
      'message_start',
      'content_block_start',
      ...Array<string>(60).fill('content_block_delta'),
      'content_block_stop',
      'message_delta',
      'message_stop',
    ]);
    const usage = { input_tokens: SYSTEM_TOKENS + PROMPT_TOKENS, cache_creation_input_tokens: 30, cache_read_input_tokens: 120 };
    expect(events[0]).toMatchObject({ type: 'message_start', message: { role: 'assistant', model: 'fb-ok', usage: { ...usage, output_tokens: 1 } } });
    expect(events.at(-2)).toEqual({ type: 'message_delta', delta: { stop_reason: 'end_turn', stop_sequence: null }, usage: { ...usage, output_tokens: 60 } });
    expect(provider.journal()).toMatchObject([{ model: 'fb-ok', shape: 'anthropic', attempt: 1, promptTokens: SYSTEM_TOKENS + PROMPT_TOKENS, completionTokensSent: 60 }]);
  });

  it("answers @anthropic-ai/sdk's messages.stream with the whole message and its usage", async () => {
    const { anthropic } = await start({ cache: { readTokens: 5 } });

    const message = await anthropic.messages.stream({ model: 'fb-ok', max_tokens: 200, messages: [{ role: 'user', content: PROMPT }] }).finalMessage();

    expect(message.content).toEqual([{ type: 'text', text: CANONICAL_ANSWER }]);
    expect(message).toMatchObject({ stop_reason: 'end_turn', usage: { input_tokens: PROMPT_TOKENS, cache_read_input_tokens: 5, cache_creation_input_tokens: 0, output_tokens: 60 } });
  });

  it('answers a non-streamed request whole', async () => {
    const { openai, anthropic } = await start();

    const completion = await openai.chat.completions.create({ model: 'fb-ok', messages: [{ role: 'user', content: PROMPT }] });
    const message = await anthropic.messages.create({ model: 'fb-ok', max_tokens: 200, messages: [{ role: 'user', content: PROMPT }] });

    expect(completion.choices[0]?.message.content).toBe(CANONICAL_ANSWER);
    expect(completion.usage).toMatchObject({ prompt_tokens: PROMPT_TOKENS, completion_tokens: 60 });
    expect(message.content).toEqual([{ type: 'text', text: CANONICAL_ANSWER }]);
  });

  it('takes the key as Authorization: Bearer or x-api-key, and refuses a request without one', async () => {
    const { provider } = await start();

    const bearer = await post(provider, 'anthropic', { ...anthropicBody('fb-ok'), stream: false });
    const xApiKey = await post(provider, 'anthropic', { ...anthropicBody('fb-ok'), stream: false }, { 'x-api-key': 'sk-ant-test' });
    const none = await post(provider, 'openai', { ...openAIBody('fb-ok'), stream: false }, {});

    expect([bearer.status, xApiKey.status, none.status]).toEqual([200, 200, 401]);
    expect(await none.json()).toMatchObject({ error: { code: 'invalid_api_key' } });
  });

  it('refuses a model it does not know with 404 model_not_found', async () => {
    const { openai } = await start();

    const { error } = await openAIStream(openai, 'gpt-unknown');

    expect(error).toBeInstanceOf(OpenAI.NotFoundError);
    expect(error).toMatchObject({ status: 404, code: 'model_not_found' });
  });
});

describe('the fault provider, prefill', () => {
  it('continues a prefill that begins the canonical answer with exactly the rest, mid-word included', async () => {
    const { provider, openai, anthropic } = await start();
    const prefill = words(25);
    const midWord = 'Switchboard keeps a conver';

    const atWord = await openAIStream(openai, 'fb-ok', [{ role: 'user', content: PROMPT }, { role: 'assistant', content: prefill }]);
    const inWord = await anthropicEvents(anthropic, 'fb-ok', [{ role: 'user', content: PROMPT }, { role: 'assistant', content: [{ type: 'text', text: midWord }] }]);

    expect(atWord.text).toBe(CANONICAL_ANSWER.slice(prefill.length));
    expect(atWord.text.startsWith(' ')).toBe(true);
    expect(atWord.usage).toMatchObject({ completion_tokens: 35 });
    expect(inWord.text).toBe(CANONICAL_ANSWER.slice(midWord.length));
    expect(inWord.text.startsWith('sation alive')).toBe(true);
    expect(provider.journal()).toMatchObject([
      { shape: 'openai', lastRole: 'assistant', prefill, completionTokensSent: 35, promptTokens: PROMPT_TOKENS + 25 + 4 },
      { shape: 'anthropic', lastRole: 'assistant', prefill: midWord, completionTokensSent: 57 },
    ]);
  });

  it('fb-ok-noprefill refuses a trailing assistant message with 400 invalid_prefill, and answers without one', async () => {
    const { provider, openai, anthropic } = await start();
    const prefilled = [{ role: 'user' as const, content: PROMPT }, { role: 'assistant' as const, content: words(10) }];

    const openAIRefusal = await openAIStream(openai, 'fb-ok-noprefill', prefilled);
    const anthropicRefusal = await anthropicEvents(anthropic, 'fb-ok-noprefill', prefilled);
    const plain = await openAIStream(openai, 'fb-ok-noprefill');

    expect(openAIRefusal.error).toBeInstanceOf(OpenAI.BadRequestError);
    expect(openAIRefusal.error).toMatchObject({ status: 400, code: 'invalid_prefill', error: { message: PREFILL_REFUSAL_MESSAGE } });
    expect(anthropicRefusal.error).toBeInstanceOf(Anthropic.BadRequestError);
    expect(anthropicRefusal.error).toMatchObject({ error: { type: 'error', error: { type: 'invalid_request_error', message: PREFILL_REFUSAL_MESSAGE } } });
    expect(plain.text).toBe(CANONICAL_ANSWER);
    expect(provider.attempts('fb-ok-noprefill').map((a) => a.action)).toEqual(['400 invalid_prefill', '400 invalid_request_error', '200 stream']);
  });
});

describe('the fault provider, refusals', () => {
  it('S01: answers the first attempt with 429 and Retry-After, later ones normally', async () => {
    const { provider, openai } = await start({ timings: { retryAfterSeconds: 0.2 } });

    const first = await openAIStream(openai, 'fb-s01-429-retry-after');
    const second = await openAIStream(openai, 'fb-s01-429-retry-after');

    expect(first.error).toBeInstanceOf(OpenAI.RateLimitError);
    const headers = (first.error as InstanceType<typeof OpenAI.RateLimitError>).headers;
    expect([headers.get('retry-after'), headers.get('retry-after-ms')]).toEqual(['0.2', '200']);
    expect(second.text).toBe(CANONICAL_ANSWER);
    expect(provider.attempts('fb-s01-429-retry-after').map((a) => a.action)).toEqual(['429 rate_limit_exceeded, retry-after 0.2 s', '200 stream']);
  });

  it("S01: the openai SDK waits out the Retry-After before its retry, as the journal's clock shows", async () => {
    const provider = await startFaultProvider({ timings: { retryAfterSeconds: 0.3 } });
    const { openai } = clients(provider, 1);

    const { text } = await openAIStream(openai, 'fb-s01-429-retry-after');

    expect(text).toBe(CANONICAL_ANSWER);
    const [first, second] = provider.attempts('fb-s01-429-retry-after');
    expect(second!.t - first!.t).toBeGreaterThanOrEqual(290);
  });

  it('S02: answers every attempt with 429 and no Retry-After', async () => {
    const { provider, openai, anthropic } = await start();

    const results = [await openAIStream(openai, 'fb-s02-429-persistent'), await openAIStream(openai, 'fb-s02-429-persistent')];
    const viaAnthropic = await anthropicEvents(anthropic, 'fb-s02-429-persistent');

    for (const { error } of results) {
      expect(error).toBeInstanceOf(OpenAI.RateLimitError);
      expect((error as InstanceType<typeof OpenAI.RateLimitError>).headers.get('retry-after')).toBeNull();
    }
    expect(viaAnthropic.error).toBeInstanceOf(Anthropic.RateLimitError);
    expect(provider.attempts('fb-s02-429-persistent').map((a) => a.action)).toEqual(['429 rate_limit_exceeded', '429 rate_limit_exceeded', '429 rate_limit_error']);
  });

  it('S03: fails the first attempt with 500, then answers', async () => {
    const { provider, openai } = await start();

    const first = await openAIStream(openai, 'fb-s03-500-then-200');
    const second = await openAIStream(openai, 'fb-s03-500-then-200');

    expect(first.error).toBeInstanceOf(OpenAI.InternalServerError);
    expect(first.error).toMatchObject({ status: 500 });
    expect(second.text).toBe(CANONICAL_ANSWER);
    expect(provider.attempts('fb-s03-500-then-200').map((a) => a.action)).toEqual(['500 server_error', '200 stream']);
  });

  it('S04 and S16: answer 503 on every attempt, 529 overloaded_error on the Anthropic shape', async () => {
    const { provider, openai, anthropic } = await start();

    const results = [await openAIStream(openai, 'fb-s04-503-persistent'), await openAIStream(openai, 'fb-s16-503-persistent')];
    const overloaded = await anthropicEvents(anthropic, 'fb-s04-503-persistent');

    for (const { error } of results) expect(error).toMatchObject({ status: 503, code: 'overloaded' });
    expect(overloaded.error).toBeInstanceOf(Anthropic.OverloadedError);
    expect(overloaded.error).toMatchObject({ status: 529 });
    expect(provider.journal().map((a) => [a.model, a.attempt, a.action])).toEqual([
      ['fb-s04-503-persistent', 1, '503 overloaded'],
      ['fb-s16-503-persistent', 1, '503 overloaded'],
      ['fb-s04-503-persistent', 2, '529 overloaded_error'],
    ]);
  });

  it('S12 and S13: refuse with 400 context_length_exceeded and content_policy_violation, in both shapes', async () => {
    const { provider, openai, anthropic } = await start();

    const tooLong = await openAIStream(openai, 'fb-s12-context-length');
    const filtered = await openAIStream(openai, 'fb-s13-content-filter');
    const tooLongAnthropic = await anthropicEvents(anthropic, 'fb-s12-context-length');
    const filteredAnthropic = await anthropicEvents(anthropic, 'fb-s13-content-filter');

    expect(tooLong.error).toMatchObject({ status: 400, code: 'context_length_exceeded', param: 'messages' });
    expect(filtered.error).toMatchObject({ status: 400, code: 'content_policy_violation' });
    expect(tooLongAnthropic.error).toMatchObject({ status: 400, error: { error: { type: 'invalid_request_error', message: expect.stringMatching(/^prompt is too long/) } } });
    expect(filteredAnthropic.error).toMatchObject({ status: 400, error: { error: { message: 'Output blocked by content filtering policy' } } });
    expect(provider.journal().map((a) => a.action)).toEqual([
      '400 context_length_exceeded',
      '400 content_policy_violation',
      '400 invalid_request_error',
      '400 invalid_request_error',
    ]);
  });

  it('S15: answers 503 for flapDownMs after a reset, then normally (an SDK retrying through the flap gets the answer)', async () => {
    const provider = await startFaultProvider({ timings: { flapDownMs: 300 } });
    const { openai } = clients(provider, 3);
    const { anthropic } = clients(provider, 0);

    provider.reset();
    const down = await anthropicEvents(anthropic, 'fb-s15-flap');
    const through = await openAIStream(openai, 'fb-s15-flap');

    expect(down.error).toBeInstanceOf(Anthropic.OverloadedError);
    expect(through.text).toBe(CANONICAL_ANSWER);
    const attempts = provider.attempts('fb-s15-flap');
    const recovered = attempts.at(-1)!;
    expect(recovered).toMatchObject({ action: '200 stream' });
    expect(recovered.t).toBeGreaterThanOrEqual(300);
    for (const early of attempts.slice(0, -1)) {
      expect(early.t).toBeLessThan(300);
      expect(early.action).toMatch(/^5\d\d overloaded(_error)? \(down window\)$/);
    }
    expect(attempts.length).toBeGreaterThanOrEqual(2);

    provider.reset();
    expect((await openAIStream(clients(provider).openai, 'fb-s15-flap')).error).toMatchObject({ status: 503 });
  });
});

describe('the fault provider, connections', () => {
  it('S05: resets the first connection with a TCP RST before any byte, then answers', async () => {
    const { provider, openai } = await start();
    const port = Number(new URL(provider.baseUrl).port);
    const body = JSON.stringify(openAIBody('fb-s05-reset'));

    const socket = connect(port, '127.0.0.1');
    let received = '';
    socket.on('data', (chunk: Buffer) => (received += chunk.toString()));
    socket.write(`POST /v1/chat/completions HTTP/1.1\r\nhost: fault\r\ncontent-type: application/json\r\nauthorization: Bearer sk-test\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
    const ending = await new Promise<string>((resolve) => {
      socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
      socket.once('end', () => resolve('end (a FIN, not a reset)'));
    });
    const second = await openAIStream(openai, 'fb-s05-reset');

    expect(ending).toBe('ECONNRESET');
    expect(received).toBe('');
    expect(second.text).toBe(CANONICAL_ANSWER);
    expect(provider.attempts('fb-s05-reset').map((a) => a.action)).toEqual(['tcp reset before headers', '200 stream']);
  });

  it('S05: the openai SDK sees the reset as a connection error', async () => {
    const { openai } = await start();

    const { error } = await openAIStream(openai, 'fb-s05-reset');

    expect(error).toBeInstanceOf(OpenAI.APIConnectionError);
  });

  it('S06: never answers; the client gives up on its own timeout and the journal notes when', async () => {
    const { provider, openai } = await start();

    const { error } = await openAIStream(openai.withOptions({ timeout: 300 }), 'fb-s06-no-response');
    await provider.waitForIdle();

    expect(error).toBeInstanceOf(OpenAI.APIConnectionTimeoutError);
    const [attempt] = provider.attempts('fb-s06-no-response');
    expect(attempt).toMatchObject({ action: 'no response', completionTokensSent: 0 });
    expect(attempt!.clientGoneAtMs! - attempt!.t).toBeGreaterThanOrEqual(290);
    expect(attempt!.clientGoneAtMs! - attempt!.t).toBeLessThan(provider.timings.noResponseMs);
  });

  it('S06: closes the connection after noResponseMs when the client waits longer', async () => {
    const { provider, openai } = await start({ timings: { noResponseMs: 200 } });

    const { error } = await openAIStream(openai, 'fb-s06-no-response');

    expect(error).toBeInstanceOf(OpenAI.APIConnectionError);
    expect(provider.attempts('fb-s06-no-response')).toMatchObject([{ action: 'no response, closed after 200 ms' }]);
    expect(provider.attempts('fb-s06-no-response')[0]).not.toHaveProperty('clientGoneAtMs');
  });

  it('S07: sends the headers at once and the first token after slowFirstTokenMs', async () => {
    const { provider } = await start({ timings: { slowFirstTokenMs: 800 } });
    const sentAt = performance.now();

    const response = await post(provider, 'openai', openAIBody('fb-s07-slow-ttft'));
    const headersAt = performance.now();
    let firstTextAt = 0;
    const body = await readBody(response, () => (firstTextAt ||= performance.now()));

    expect(response.status).toBe(200);
    expect(headersAt - sentAt).toBeLessThan(400);
    expect(firstTextAt - sentAt).toBeGreaterThanOrEqual(800);
    expect(contentOf(sseData(body.text))).toBe(CANONICAL_ANSWER);
  });
});

describe('the fault provider, broken streams', () => {
  it('S08: cuts the stream after cutAfterTokens tokens, with no finish, no usage, no [DONE] and no proper end', async () => {
    const { provider } = await start();

    const response = await post(provider, 'openai', openAIBody('fb-s08-stream-cut'));
    const body = await readBody(response);

    expect(body.error).toBeInstanceOf(TypeError);
    const data = sseData(body.text);
    expect(contentOf(data)).toBe(words(40));
    expect(data).not.toContain('[DONE]');
    expect(body.text).not.toMatch(/finish_reason":"stop"|"usage"/);
    expect(provider.attempts('fb-s08-stream-cut')).toMatchObject([{ action: 'stream cut after 40 tokens', completionTokensSent: 40 }]);
  });

  it("S08 and S14: both SDKs' streams throw undici's TypeError (not an APIError) after the tokens that came", async () => {
    const { openai, anthropic } = await start({ timings: { cutAfterTokens: 12 } });

    const viaOpenAI = await openAIStream(openai, 'fb-s08-stream-cut');
    const viaAnthropic = await anthropicEvents(anthropic, 'fb-s14-stream-cut');

    expect(viaOpenAI.text).toBe(words(12));
    expect(viaOpenAI.error).toBeInstanceOf(TypeError);
    expect(viaOpenAI.error).not.toBeInstanceOf(OpenAI.APIError);
    expect(viaAnthropic.text).toBe(words(12));
    expect(viaAnthropic.error).toBeInstanceOf(TypeError);
  });

  it('S09: stalls after stallAfterTokens tokens with the connection open, then closes it', async () => {
    const { provider } = await start({ timings: { stallMs: 400 } });

    const response = await post(provider, 'openai', openAIBody('fb-s09-stream-stall'));
    const body = await readBody(response);

    expect(contentOf(sseData(body.text))).toBe(words(20));
    expect(body.error).toBeInstanceOf(TypeError);
    expect(body.endedAt - body.lastDataAt).toBeGreaterThanOrEqual(390);
    expect(provider.attempts('fb-s09-stream-stall')).toMatchObject([{ action: 'stream stalled after 20 tokens, closed after 400 ms', completionTokensSent: 20 }]);
  });

  it('S09: notes a client that gives up during the stall', async () => {
    const { provider } = await start();
    const abort = new AbortController();

    const response = await post(provider, 'anthropic', anthropicBody('fb-s09-stream-stall'), undefined, abort.signal);
    await readBody(response, (text) => {
      // Each delta names its type twice: in its event line and in its data.
      if (text.split('content_block_delta').length - 1 >= 2 * 20) abort.abort();
    });
    await provider.waitForIdle();

    const [attempt] = provider.attempts('fb-s09-stream-stall');
    expect(attempt).toMatchObject({ action: 'stream stalled after 20 tokens', completionTokensSent: 20, clientGoneAtMs: expect.any(Number) });
    expect(attempt!.clientGoneAtMs!).toBeLessThan(attempt!.t + provider.timings.stallMs);
  });

  it('S10: sends an event of invalid JSON before token malformedAtToken, and otherwise completes', async () => {
    const { provider, openai, anthropic } = await start();

    const response = await post(provider, 'openai', openAIBody('fb-s10-malformed-chunk'));
    const body = await readBody(response);
    const viaOpenAI = await openAIStream(openai, 'fb-s10-malformed-chunk');
    const viaAnthropic = await anthropicEvents(anthropic, 'fb-s10-malformed-chunk');

    expect(body.error).toBeUndefined();
    const data = sseData(body.text);
    const unreadable = data.filter((d) => d !== '[DONE]' && !parses(d));
    expect(unreadable).toHaveLength(1);
    expect(data.indexOf(unreadable[0]!)).toBe(1 + 10);
    expect(contentOf(data.filter(parsesOrDone))).toBe(CANONICAL_ANSWER);
    expect(data.at(-1)).toBe('[DONE]');
    expect(viaOpenAI).toMatchObject({ text: words(10), error: expect.any(SyntaxError) });
    expect(viaAnthropic).toMatchObject({ text: words(10), error: expect.any(SyntaxError) });
  });

  it('S11: ends a complete stream, usage included, without [DONE] (Anthropic: without message_stop)', async () => {
    const { provider, openai, anthropic } = await start();

    const openAIRaw = await readBody(await post(provider, 'openai', openAIBody('fb-s11-no-done')));
    const anthropicRaw = await readBody(await post(provider, 'anthropic', anthropicBody('fb-s11-no-done')));
    const viaOpenAI = await openAIStream(openai, 'fb-s11-no-done');
    const viaCreate = await anthropicEvents(anthropic, 'fb-s11-no-done');
    const viaStream = await anthropic.messages
      .stream({ model: 'fb-s11-no-done', max_tokens: 200, messages: [{ role: 'user', content: PROMPT }] })
      .finalMessage()
      .catch((error: unknown) => error);

    expect(openAIRaw.error).toBeUndefined();
    const data = sseData(openAIRaw.text);
    expect(data).not.toContain('[DONE]');
    expect(JSON.parse(data.at(-1)!)).toMatchObject({ choices: [], usage: { completion_tokens: 60 } });
    expect(anthropicRaw.error).toBeUndefined();
    expect(anthropicRaw.text).not.toContain('message_stop');
    expect(anthropicRaw.text).toMatch(/event: message_delta\n[^\n]*"output_tokens":60[^\n]*\n\n$/);
    expect(viaOpenAI).toMatchObject({ text: CANONICAL_ANSWER, usage: { completion_tokens: 60 }, error: undefined });
    expect(viaCreate).toMatchObject({ text: CANONICAL_ANSWER, error: undefined });
    // MessageStream only builds its final message on message_stop.
    expect(viaStream).toBeInstanceOf(Anthropic.AnthropicError);
    expect(provider.journal().map((a) => a.action)).toEqual([
      '200 stream without [DONE]',
      '200 stream without message_stop',
      '200 stream without [DONE]',
      '200 stream without message_stop',
      '200 stream without message_stop',
    ]);
  });

  it('X01: sends an error inside the stream after inbandErrorAfterTokens tokens, which both SDKs throw as an APIError', async () => {
    const { provider, openai, anthropic } = await start();

    const viaOpenAI = await openAIStream(openai, 'fb-x01-inband-error');
    const viaAnthropic = await anthropicEvents(anthropic, 'fb-x01-inband-error');
    const raw = await readBody(await post(provider, 'openai', openAIBody('fb-x01-inband-error')));

    expect(viaOpenAI.text).toBe(words(30));
    expect(viaOpenAI.error).toBeInstanceOf(OpenAI.APIError);
    expect(viaOpenAI.error).toMatchObject({ status: undefined, type: 'server_error' });
    expect(viaAnthropic.text).toBe(words(30));
    expect(viaAnthropic.error).toBeInstanceOf(Anthropic.APIError);
    expect(viaAnthropic.error).toMatchObject({ status: undefined, error: { type: 'error', error: { type: 'overloaded_error' } } });
    expect(raw.error).toBeUndefined();
    expect(JSON.parse(sseData(raw.text).at(-1)!)).toEqual({ error: { message: expect.any(String), type: 'server_error', param: null, code: null } });
    expect(provider.attempts('fb-x01-inband-error').map((a) => [a.action, a.completionTokensSent])).toEqual([
      ['in-band error after 30 tokens', 30],
      ['in-band error after 30 tokens', 30],
      ['in-band error after 30 tokens', 30],
    ]);
  });
});

describe('the fault provider, journal and lifecycle', () => {
  it('counts "once" faults per model name since the last reset, and restarts the clock on reset', async () => {
    const { provider, openai } = await start();

    await openAIStream(openai, 'fb-s03-500-then-200');
    await openAIStream(openai, 'fb-s03-500-then-200');
    await openAIStream(openai, 'fb-s03-other-name');
    const beforeReset = provider.journal();
    provider.reset();
    const afterReset = await openAIStream(openai, 'fb-s03-500-then-200');

    expect(beforeReset.map((a) => [a.model, a.attempt, a.action])).toEqual([
      ['fb-s03-500-then-200', 1, '500 server_error'],
      ['fb-s03-500-then-200', 2, '200 stream'],
      ['fb-s03-other-name', 1, '500 server_error'],
    ]);
    expect(afterReset.error).toMatchObject({ status: 500 });
    expect(provider.journal()).toMatchObject([{ model: 'fb-s03-500-then-200', attempt: 1 }]);
    expect(provider.journal()[0]!.t).toBeLessThan(beforeReset.at(-1)!.t);
  });

  it('waitForAttempts resolves when the n-th attempt arrives and says what it waited for when none does', async () => {
    const { provider } = await start();
    const abort = new AbortController();

    const hanging = [1, 2].map(() => post(provider, 'openai', openAIBody('fb-s06-no-response'), undefined, abort.signal).catch(() => 'aborted'));
    const attempts = await provider.waitForAttempts('fb-s06-no-response', 2);
    abort.abort();
    await Promise.all(hanging);

    expect(attempts.map((a) => a.attempt)).toEqual([1, 2]);
    await expect(provider.waitForAttempts('fb-ok', 1, 50)).rejects.toThrow('waited 50 ms for attempt 1 on fb-ok (saw 0)');
  });

  it('close() destroys the connections that hang (no response, a stalled stream) at once', async () => {
    const { provider } = await start();
    const noResponse = post(provider, 'openai', openAIBody('fb-s06-no-response')).then(
      () => 'answered',
      (error: unknown) => error,
    );
    const stalled = post(provider, 'anthropic', anthropicBody('fb-s09-stream-stall')).then(readBody);
    await provider.waitForAttempts('fb-s06-no-response', 1);
    await provider.waitForAttempts('fb-s09-stream-stall', 1);
    const waiting = provider.waitForAttempts('fb-ok', 1).catch((error: Error) => error.message);

    const closingAt = performance.now();
    await provider.close();

    expect(await noResponse).toBeInstanceOf(TypeError);
    expect((await stalled).error).toBeInstanceOf(TypeError);
    expect(performance.now() - closingAt).toBeLessThan(provider.timings.stallMs);
    expect(await waiting).toBe('the fault provider closed while waiting for attempt 1 on fb-ok (saw 0)');
  });
});

describe('the fault scenarios', () => {
  it('name a fault for every catalogue scenario S01–S16, plus the in-band error X01', () => {
    expect(FAULT_SCENARIOS.map((s) => s.id)).toEqual([...Array.from({ length: 16 }, (_, i) => `S${String(i + 1).padStart(2, '0')}`), 'X01']);
    for (const scenario of FAULT_SCENARIOS) expect(faultOf(scenario.model)).toBe(scenario.fault);
    expect(FAULT_SCENARIOS.find((s) => s.id === 'S14')?.fallbackModel).toBe('fb-ok-noprefill');
    expect(faultOf('openai/fb-OK')).toBe('ok');
    expect(faultOf('fb-s99-unknown')).toBeUndefined();
  });

  it('answer with sixty words that the tokens give back exactly', () => {
    expect(CANONICAL_ANSWER.split(/\s+/)).toHaveLength(60);
    expect(answerTokens(CANONICAL_ANSWER).join('')).toBe(CANONICAL_ANSWER);
  });
});

function parses(data: string): boolean {
  try {
    JSON.parse(data);
    return true;
  } catch {
    return false;
  }
}

const parsesOrDone = (data: string) => data === '[DONE]' || parses(data);
