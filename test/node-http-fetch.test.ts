import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createUpstream, describeUpstreamFailure, openAICompatibleProvider } from '../src/providers/openai-compatible.js';
import { createNodeHttpFetch, streamedBodyOf } from '../src/providers/node-http-fetch.js';
import { createAnthropicClient } from '../src/providers/anthropic.js';
import type { ChatRequest, ProviderEvent } from '../src/providers/provider.js';
import { MockUpstream } from './helpers/upstream.js';

let upstream: MockUpstream;
beforeAll(async () => {
  upstream = await MockUpstream.start();
});
afterAll(() => upstream.stop());

const baseUrl = () => upstream.env.OPENAI_BASE_URL!;
const request = (prompt: string): ChatRequest => ({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: prompt }], maxTokens: 100, reasoning: false });
const chat = (prompt: string) => ({ model: 'gpt-4o-mini', messages: [{ role: 'user' as const, content: prompt }], stream: true as const });

describe('the providers’ fetch on node:http', () => {
  it('hands a streamed answer over as its Node stream, and the provider reads every chunk of it', async () => {
    const prompt = upstream.prompt({ content: 'one two three four five six' }, { chunkSize: 3 });
    const response = await createUpstream({ apiKey: 'sk-test', baseUrl: baseUrl(), timeoutMs: 10_000 }).chat.completions.create(chat(prompt)).asResponse();
    expect(response.status).toBe(200);
    expect(streamedBodyOf(response)).toBeDefined();
    streamedBodyOf(response)!.destroy();

    const provider = openAICompatibleProvider(createUpstream({ apiKey: 'sk-test', baseUrl: baseUrl(), timeoutMs: 10_000 }));
    const events: ProviderEvent[] = [];
    for await (const event of provider.stream(request(prompt), { signal: new AbortController().signal, timeoutMs: 10_000 })) {
      events.push(event);
    }
    const text = events.flatMap((e) => (e.type === 'text' ? [e.delta] : [])).join('');
    expect(text).toBe('one two three four five six');
    expect(events.filter((e) => e.type === 'text').length).toBeGreaterThan(5);
  });

  it('hands Anthropic’s streamed answer over as its Node stream too', async () => {
    const prompt = upstream.prompt({ content: 'from the messages API' });
    const client = createAnthropicClient({ apiKey: 'sk-ant-test', baseUrl: upstream.mock.url, timeoutMs: 10_000 });
    const response = await client.messages
      .create({ model: 'claude-sonnet-4', max_tokens: 100, messages: [{ role: 'user', content: prompt }], stream: true })
      .asResponse();
    expect(response.status).toBe(200);
    expect(streamedBodyOf(response)).toBeDefined();
    streamedBodyOf(response)!.destroy();
  });

  it('gives an error answer whole, with its status, headers and body, as the SDK classifies it', async () => {
    const prompt = upstream.prompt({ error: { message: 'slow down', type: 'rate_limit_error' }, status: 429, retryAfter: 7 });
    const failure = await createUpstream({ apiKey: 'sk-test', baseUrl: baseUrl(), timeoutMs: 10_000 })
      .chat.completions.create(chat(prompt))
      .then(() => undefined, (error: unknown) => error);
    expect(describeUpstreamFailure(failure)).toMatchObject({ kind: 'rate_limited', status: 429, errorCode: 'rate_limit_error', retryAfterSeconds: 7 });
  });

  it('stops reading a streamed answer when its signal aborts', async () => {
    const prompt = upstream.prompt({ content: 'a slow reply that will not be read to the end' }, { chunkSize: 2, latency: 50 });
    const controller = new AbortController();
    const provider = openAICompatibleProvider(createUpstream({ apiKey: 'sk-test', baseUrl: baseUrl(), timeoutMs: 10_000 }));
    let text = '';
    const reading = (async () => {
      for await (const event of provider.stream(request(prompt), { signal: controller.signal, timeoutMs: 10_000 })) {
        if (event.type === 'text') text += event.delta;
        if (text.length >= 4) controller.abort();
      }
    })();
    await expect(reading).rejects.toMatchObject({ name: 'AbortError' });
    expect(text.length).toBeLessThan(10);
  });

  it('passes a request it does not handle (a body that is not text) to the built-in fetch', async () => {
    const nodeFetch = createNodeHttpFetch();
    const response = await nodeFetch(`${baseUrl()}/models`, { method: 'GET', body: null });
    expect(response.ok).toBe(true);
    expect(streamedBodyOf(response)).toBeUndefined();
    expect(await response.json()).toHaveProperty('data');
  });
});
