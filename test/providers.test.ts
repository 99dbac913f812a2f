import { describe, expect, it } from 'vitest';
import { createUpstream, openAICompatibleProvider } from '../src/providers/openai-compatible.js';
import type { ChatRequest, ProviderEvent } from '../src/providers/provider.js';
import { MockUpstream } from './helpers/upstream.js';

async function collect(events: AsyncIterable<ProviderEvent>): Promise<ProviderEvent[]> {
  const all: ProviderEvent[] = [];
  for await (const event of events) all.push(event);
  return all;
}

const request = (prompt: string, overrides: Partial<ChatRequest> = {}): ChatRequest => ({
  model: 'gpt-4o-mini',
  messages: [{ role: 'user', content: prompt }],
  maxTokens: 50,
  reasoning: false,
  ...overrides,
});

describe('the OpenAI-compatible provider', () => {
  it('turns a streamed completion into text, usage (with its cached and reasoning parts) and finish events', async () => {
    const upstream = await MockUpstream.start();
    const provider = openAICompatibleProvider(createUpstream({ apiKey: 'sk-test', baseUrl: upstream.openRouterEnv.OPENAI_BASE_URL!, timeoutMs: 5_000 }));
    const usage = { prompt_tokens: 40, completion_tokens: 12, prompt_tokens_details: { cached_tokens: 30 }, completion_tokens_details: { reasoning_tokens: 5 } };
    const prompt = upstream.prompt({ content: 'one two three', usage }, { chunkSize: 4 });

    const events = await collect(provider.stream(request(prompt), { signal: new AbortController().signal, timeoutMs: 5_000 }));

    const text = events.flatMap((e) => (e.type === 'text' ? [e.delta] : [])).join('');
    expect(text).toBe('one two three');
    expect(events.filter((e) => e.type === 'finish')).toEqual([{ type: 'finish', reason: 'stop' }]);
    expect(events.filter((e) => e.type === 'usage')).toEqual([
      { type: 'usage', usage: { promptTokens: 40, cachedTokens: 30, cacheWriteTokens: 0, completionTokens: 12, reasoningTokens: 5 } },
    ]);
    // Every event comes in stream order: no text after the finish.
    expect(events.findIndex((e) => e.type === 'finish')).toBeGreaterThan(events.findLastIndex((e) => e.type === 'text'));
  });

  it('asks a reasoning model for max_completion_tokens and leaves its temperature out', async () => {
    const upstream = await MockUpstream.start();
    const provider = openAICompatibleProvider(createUpstream({ apiKey: 'sk-test', baseUrl: upstream.env.OPENAI_BASE_URL!, timeoutMs: 5_000 }));
    const prompt = upstream.prompt({ content: 'thought about it' });

    await collect(provider.stream(request(prompt, { model: 'o4-mini', reasoning: true, temperature: 0.3 }), { signal: new AbortController().signal, timeoutMs: 5_000 }));

    const [sent] = upstream.requestsFor(prompt) as Array<Record<string, unknown>>;
    expect(sent).toMatchObject({ model: 'o4-mini', max_completion_tokens: 50 });
    expect(sent).not.toHaveProperty('max_tokens');
    expect(sent).not.toHaveProperty('temperature');
  });

  it('classifies a rate limit as such, with the Retry-After it was sent and none of the provider\'s text', async () => {
    const upstream = await MockUpstream.start();
    const provider = openAICompatibleProvider(createUpstream({ apiKey: 'sk-test', baseUrl: upstream.env.OPENAI_BASE_URL!, timeoutMs: 5_000 }));
    // aimock answers a 429 with Retry-After: 1.
    const limited = upstream.prompt({ error: { message: 'slow down', type: 'rate_limit_error' }, status: 429 } as never);

    const failure = await collect(provider.stream(request(limited), { signal: new AbortController().signal, timeoutMs: 5_000 })).then(
      () => undefined,
      (error: unknown) => provider.describeFailure(error),
    );
    expect(failure).toMatchObject({ kind: 'rate_limited', status: 429, retryAfterSeconds: 1 });
    expect(failure?.message).not.toContain('slow down');
  });
});
