import { describe, expect, it } from 'vitest';
import { messagesRequest } from '../src/providers/anthropic-request.js';
import type { ChatRequest } from '../src/providers/provider.js';
import { registerUser } from './helpers/accounts.js';
import { errorCodes, expectData, startWithUpstreamForFile, type TestApp } from './helpers/app.js';
import { SendMessageDocument } from './helpers/chat-documents.js';
import { MockUpstream } from './helpers/upstream.js';
import { waitFor } from './helpers/wait.js';

const PRICED = { contextWindow: 128_000, maxOutputTokens: 16_384, promptMicrosPerMillion: 150_000, completionMicrosPerMillion: 600_000 };
const SAMPLING = { topP: 0.5, stop: ['END', '\n\n'], seed: 7, presencePenalty: 0.3, frequencyPenalty: -0.4, reasoningEffort: 'HIGH' as const };

describe('sampling parameters', () => {
  let upstream: MockUpstream;
  let t: TestApp;
  startWithUpstreamForFile(
    (app, mock) => {
      t = app;
      upstream = mock;
    },
    { MODELS_JSON: JSON.stringify([{ ...PRICED, id: 'gpt-4o-mini' }, { ...PRICED, id: 'o4-mini', reasoning: true }]) },
  );

  async function sentUpstream(model: string, extra: Record<string, unknown> = {}) {
    const user = await registerUser(t);
    const prompt = upstream.prompt({ content: 'sampled' });
    expectData(await t.execute(SendMessageDocument, { input: { content: prompt, model, stream: false, ...SAMPLING, ...extra } }, { token: user.accessToken }));
    return waitFor('the upstream request', () => upstream.requestsFor(prompt)[0] as Record<string, unknown> | undefined);
  }

  it('passes each one on to a chat model under its OpenAI name, and leaves out the reasoning effort it does not take', async () => {
    const sent = await sentUpstream('gpt-4o-mini', { temperature: 0.2 });
    expect(sent).toMatchObject({ temperature: 0.2, top_p: 0.5, stop: ['END', '\n\n'], seed: 7, presence_penalty: 0.3, frequency_penalty: -0.4 });
    expect(sent).not.toHaveProperty('reasoning_effort');
  });

  it('gives a reasoning model its effort and seed, and leaves out what it would refuse', async () => {
    const sent = await sentUpstream('o4-mini', { temperature: 0.2 });
    expect(sent).toMatchObject({ reasoning_effort: 'high', seed: 7, max_completion_tokens: expect.any(Number) });
    for (const refused of ['temperature', 'top_p', 'stop', 'presence_penalty', 'frequency_penalty', 'max_tokens']) expect(sent).not.toHaveProperty(refused);
  });

  it('refuses values out of their ranges before any call', async () => {
    const user = await registerUser(t);
    const bad: Array<Record<string, unknown>> = [
      { topP: 1.5 },
      { presencePenalty: 2.5 },
      { frequencyPenalty: -3 },
      { stop: ['a', 'b', 'c', 'd', 'e'] },
      { stop: [''] },
      { stop: ['x'.repeat(101)] },
    ];
    for (const input of bad) {
      const prompt = upstream.prompt({ content: 'never' });
      const result = await t.execute(SendMessageDocument, { input: { content: prompt, ...input } }, { token: user.accessToken });
      expect(errorCodes(result)).toEqual(['BAD_USER_INPUT']);
      expect(upstream.requestsFor(prompt)).toHaveLength(0);
    }
  });
});

describe('sampling on Anthropic', () => {
  const request = (overrides: Partial<ChatRequest>): ChatRequest => ({
    model: 'claude-sonnet-4',
    messages: [{ role: 'user', content: 'hi' }],
    maxTokens: 100,
    reasoning: false,
    sampling: { topP: 0.5, stop: ['END'], seed: 7, presencePenalty: 0.3, frequencyPenalty: -0.4, reasoningEffort: 'high' },
    ...overrides,
  });

  it('sends top_p and stop_sequences, and leaves out the seed, the penalties and the reasoning effort it has no names for', () => {
    const { params } = messagesRequest(request({}));
    expect(params).toMatchObject({ top_p: 0.5, stop_sequences: ['END'] });
    for (const absent of ['seed', 'presence_penalty', 'frequency_penalty', 'reasoning_effort', 'temperature']) expect(params).not.toHaveProperty(absent);
  });

  it('keeps the temperature and leaves out top_p when both are asked for (newer models refuse the pair)', () => {
    const { params } = messagesRequest(request({ temperature: 0.3 }));
    expect(params).toMatchObject({ temperature: 0.3 });
    expect(params).not.toHaveProperty('top_p');
  });
});
