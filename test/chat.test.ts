import { describe, expect, it } from 'vitest';
import { decodeGlobalId } from '../src/global-id.js';
import { errorCodes, expectData, serveWithUpstreamForFile, startTestApp, type TestApp } from './helpers/app.js';
import { registerUser } from './helpers/accounts.js';
import {
  ConversationDocument,
  MessageDocument,
  ModelsDocument,
  SendMessageDocument,
  StopGenerationDocument,
  UsageDocument,
} from './helpers/chat-documents.js';
import { MockUpstream } from './helpers/upstream.js';
import { waitFor } from './helpers/wait.js';
import { followStream } from './helpers/ws.js';

let upstream: MockUpstream;
let t: TestApp;
let url: URL;
serveWithUpstreamForFile(
  (app, address, mock) => ((t = app), (url = address), (upstream = mock)),
  {
    UPSTREAM_TIMEOUT_SECONDS: '2',
    UPSTREAM_MAX_ATTEMPTS: '3',
    MODELS_JSON: JSON.stringify([
      { id: 'gpt-4o-mini', contextWindow: 128_000, maxOutputTokens: 16_384, promptMicrosPerMillion: 150_000, completionMicrosPerMillion: 600_000 },
      { id: 'tiny-context', contextWindow: 64, maxOutputTokens: 16, promptMicrosPerMillion: 0, completionMicrosPerMillion: 0, free: true },
      // A reasoning model by its id, and one the operator marks as reasoning.
      { id: 'o4-mini', contextWindow: 200_000, maxOutputTokens: 100_000, promptMicrosPerMillion: 1_100_000, completionMicrosPerMillion: 4_400_000 },
      { id: 'house-reasoner', contextWindow: 32_000, maxOutputTokens: 8_000, free: true, reasoning: true },
    ]),
  },
);

const rawId = (globalId: string) => decodeGlobalId(globalId).id;

function waitForFinal(token: string, messageId: string) {
  return waitFor('the message to reach a final status', async () => {
    const node = expectData(await t.execute(MessageDocument, { id: messageId }, { token })).node;
    return node && 'status' in node && !['STREAMING', 'PENDING'].includes(node.status) ? node : undefined;
  });
}

describe('models', () => {
  it('lists the configured models (MODELS_JSON), with prices, when an upstream key is configured', async () => {
    const models = expectData(await t.execute(ModelsDocument)).models;
    expect(models.map((m) => m.id)).toContain('gpt-4o-mini');
    expect(models.every((m) => !m.isDemo)).toBe(true);
    expect(models.find((m) => m.id === 'gpt-4o-mini')?.pricing).toEqual({
      promptMicrosPerMillion: 150_000,
      completionMicrosPerMillion: 600_000,
    });
  });

  it('without a key runs the labelled demo upstream through the real SDK path', async () => {
    const demo = await startTestApp();
    try {
      const models = expectData(await demo.execute(ModelsDocument)).models;
      expect(models).toEqual([expect.objectContaining({ id: 'switchboard-demo', isDemo: true, provider: 'demo' })]);
      const user = await registerUser(demo);
      const sent = expectData(
        await demo.execute(SendMessageDocument, { input: { content: 'hi demo', stream: false } }, { token: user.accessToken }),
      ).sendMessage;
      expect(sent.assistantMessage.status).toBe('COMPLETE');
      expect(sent.assistantMessage.content).toContain('demo model');
      expect(sent.assistantMessage.completionTokens).toBeGreaterThan(0);
    } finally {
      await demo.stop();
    }
  });
});

describe('sendMessage without streaming', () => {
  it('returns the complete reply with the upstream usage and its cost', async () => {
    const user = await registerUser(t);
    const prompt = upstream.prompt({ content: 'The answer is 42.', usage: { prompt_tokens: 1000, completion_tokens: 2000 } });
    const sent = expectData(
      await t.execute(SendMessageDocument, { input: { content: prompt, model: 'gpt-4o-mini', stream: false } }, { token: user.accessToken }),
    ).sendMessage;
    expect(sent.userMessage).toMatchObject({ role: 'USER', content: prompt, status: 'COMPLETE' });
    expect(sent.assistantMessage).toMatchObject({
      role: 'ASSISTANT',
      status: 'COMPLETE',
      content: 'The answer is 42.',
      model: 'gpt-4o-mini',
      promptTokens: 1000,
      completionTokens: 2000,
      totalTokens: 3000,
      // 1000 × $0.15/M + 2000 × $0.60/M = 150 + 1200 micro-dollars
      costMicros: 1350,
      usageEstimated: false,
      finishReason: 'stop',
    });
    expect(sent.conversation).toMatchObject({ title: prompt, messageCount: 2 });
  });

  it('sends the system prompt and the earlier turns, and asks for usage', async () => {
    const user = await registerUser(t);
    const first = upstream.prompt({ content: 'First reply.' });
    const sent = expectData(
      await t.execute(
        SendMessageDocument,
        { input: { content: first, systemPrompt: 'You are terse.', stream: false } },
        { token: user.accessToken },
      ),
    ).sendMessage;
    const second = upstream.prompt({ content: 'Second reply.' });
    expectData(
      await t.execute(
        SendMessageDocument,
        { input: { conversationId: sent.conversation.id, content: second, stream: false, maxTokens: 50, temperature: 0.2 } },
        { token: user.accessToken },
      ),
    );
    const [request] = upstream.requestsFor(second);
    expect(request?.messages).toEqual([
      { role: 'system', content: 'You are terse.' },
      { role: 'user', content: first },
      { role: 'assistant', content: 'First reply.' },
      { role: 'user', content: second },
    ]);
    expect(request).toMatchObject({ max_tokens: 50, temperature: 0.2, stream: true, stream_options: { include_usage: true } });
  });

  it.each(['o4-mini', 'house-reasoner'])('asks the reasoning model %s for max_completion_tokens, and leaves the temperature out', async (model) => {
    const user = await registerUser(t);
    const prompt = upstream.prompt({ content: 'Thought it through.' });
    const sent = expectData(
      await t.execute(SendMessageDocument, { input: { content: prompt, model, stream: false, maxTokens: 50, temperature: 0.2 } }, { token: user.accessToken }),
    ).sendMessage;
    expect(sent.assistantMessage).toMatchObject({ status: 'COMPLETE', content: 'Thought it through.' });
    const [request] = upstream.requestsFor(prompt);
    expect(request).toMatchObject({ model, max_completion_tokens: 50, stream: true });
    expect(request).not.toHaveProperty('max_tokens');
    expect(request).not.toHaveProperty('temperature');
  });

  it("clamps maxTokens to the model's output limit", async () => {
    const user = await registerUser(t);
    const prompt = upstream.prompt({ content: 'ok' });
    expectData(
      await t.execute(SendMessageDocument, { input: { content: prompt, maxTokens: 10_000_000, stream: false } }, { token: user.accessToken }),
    );
    expect(upstream.requestsFor(prompt)[0]?.max_tokens).toBe(16_384);
  });

  it.each([
    ['an empty message', { content: '   ' }, 'content'],
    ['an unknown model', { content: 'x', model: 'gpt-nope' }, 'model'],
    ['a prompt larger than the context window', { content: 'many words '.repeat(40), model: 'tiny-context' }, 'content'],
    ['a message over 100,000 characters', { content: 'x'.repeat(100_001) }, 'content'],
    ['a negative maxTokens', { content: 'x', maxTokens: -1 }, 'maxTokens'],
    ['a temperature above 2', { content: 'x', temperature: 3 }, 'temperature'],
  ])('refuses %s with BAD_USER_INPUT and writes nothing', async (_label, input, field) => {
    const user = await registerUser(t);
    const result = await t.execute(SendMessageDocument, { input }, { token: user.accessToken });
    expect(errorCodes(result)).toEqual(['BAD_USER_INPUT']);
    expect(result.errors?.[0]?.extensions?.field).toBe(field);
    expect(await t.app.db.prisma.message.count({ where: { user: { email: user.email } } })).toBe(0);
  });

  it('requires authentication', async () => {
    expect(errorCodes(await t.execute(SendMessageDocument, { input: { content: 'x' } }))).toEqual(['UNAUTHENTICATED']);
  });

  it("cannot post into another user's conversation", async () => {
    const alice = await registerUser(t);
    const mallory = await registerUser(t);
    const prompt = upstream.prompt({ content: 'ok' });
    const sent = expectData(await t.execute(SendMessageDocument, { input: { content: prompt, stream: false } }, { token: alice.accessToken }));
    const result = await t.execute(
      SendMessageDocument,
      { input: { conversationId: sent.sendMessage.conversation.id, content: 'hi' } },
      { token: mallory.accessToken },
    );
    expect(errorCodes(result)).toEqual(['NOT_FOUND']);
  });
});

describe('upstream failures', () => {
  it('retries a 429 that came before any token, and completes', async () => {
    const user = await registerUser(t);
    const prompt = upstream.promptSequence([
      { response: { error: { message: 'slow down', type: 'rate_limit_error' }, status: 429, retryAfter: 0 } },
      { response: { content: 'after retry' } },
    ]);
    const sent = expectData(await t.execute(SendMessageDocument, { input: { content: prompt, stream: false } }, { token: user.accessToken }));
    expect(sent.sendMessage.assistantMessage).toMatchObject({ status: 'COMPLETE', content: 'after retry' });
    expect(upstream.requestsFor(prompt)).toHaveLength(2);
  });

  it('ends FAILED with UPSTREAM_ERROR when the upstream keeps failing, and records no usage', async () => {
    const user = await registerUser(t);
    const prompt = upstream.prompt({ error: { message: 'internal secret detail', type: 'server_error' }, status: 500 });
    const result = await t.execute(SendMessageDocument, { input: { content: prompt, stream: false } }, { token: user.accessToken });
    expect(errorCodes(result)).toEqual(['UPSTREAM_ERROR']);
    expect(JSON.stringify(result)).not.toContain('internal secret detail');
    expect(upstream.requestsFor(prompt)).toHaveLength(3);
    // The id in the error is a Relay global id: node(id:) resolves it.
    const messageId = result.errors?.[0]?.extensions?.messageId as string;
    const node = expectData(await t.execute(MessageDocument, { id: messageId }, { token: user.accessToken })).node;
    expect(node).toMatchObject({ id: messageId, status: 'FAILED' });
    const message = await t.app.db.prisma.message.findUniqueOrThrow({ where: { id: rawId(messageId) } });
    expect(message).toMatchObject({ status: 'FAILED', errorCode: 'UPSTREAM_ERROR', totalTokens: 0 });
    expect(message.errorMessage).toMatch(/HTTP 500/);
  });

  it('does not retry once tokens went out: a broken stream ends FAILED with the text so far, usage estimated', async () => {
    const user = await registerUser(t);
    const prompt = upstream.prompt({ content: 'abcdefghijklmnopqrstuvwxyz' }, { chunkSize: 2, latency: 20, truncateAfterChunks: 5 });
    const sent = expectData(await t.execute(SendMessageDocument, { input: { content: prompt } }, { token: user.accessToken }));
    const message = await waitForFinal(user.accessToken, sent.sendMessage.assistantMessage.id);
    expect(message).toMatchObject({ status: 'FAILED', usageEstimated: true, error: { code: 'UPSTREAM_ERROR' } });
    expect(message.content.length).toBeGreaterThan(0);
    expect('abcdefghijklmnopqrstuvwxyz'.startsWith(message.content)).toBe(true);
    expect(message.completionTokens).toBeGreaterThan(0);
    expect(upstream.requestsFor(prompt)).toHaveLength(1);
  });

  it('fails with UPSTREAM_ERROR when tokens stop coming (idle timeout)', async () => {
    const user = await registerUser(t);
    const prompt = upstream.prompt({ content: 'slow slow slow' }, { chunkSize: 5, latency: 2500 });
    const sent = expectData(await t.execute(SendMessageDocument, { input: { content: prompt } }, { token: user.accessToken }));
    const message = await waitForFinal(user.accessToken, sent.sendMessage.assistantMessage.id);
    expect(message).toMatchObject({ status: 'FAILED', error: { code: 'UPSTREAM_ERROR', message: 'The model provider did not respond in time' } });
  });
});

describe('stopping and disconnecting', () => {
  it('stopGeneration ends the message STOPPED with the text so far and estimated usage', async () => {
    const user = await registerUser(t);
    const text = 'one two three four five six seven eight nine ten eleven twelve';
    const prompt = upstream.prompt({ content: text }, { chunkSize: 4, latency: 60 });
    const sent = expectData(await t.execute(SendMessageDocument, { input: { content: prompt } }, { token: user.accessToken }));
    const messageId = sent.sendMessage.assistantMessage.id;
    await followStream(url, user.accessToken, messageId, (events) => events.length > 0);
    const stopped = expectData(await t.execute(StopGenerationDocument, { messageId }, { token: user.accessToken })).stopGeneration;
    expect(stopped).toMatchObject({ status: 'STOPPED', usageEstimated: true, finishReason: 'stop_requested' });
    expect(stopped.content.length).toBeGreaterThan(0);
    expect(stopped.content.length).toBeLessThan(text.length);
    expect(text.startsWith(stopped.content)).toBe(true);
    expect(stopped.promptTokens).toBeGreaterThan(0);
    // The reservation was settled: nothing stays reserved.
    const period = await t.app.db.prisma.quotaPeriod.findFirstOrThrow({ where: { user: { email: user.email } } });
    expect(period.reservedTokens).toBe(0n);
    expect(Number(period.usedTokens)).toBe(stopped.promptTokens + stopped.completionTokens);
  });

  it("cannot stop another user's generation", async () => {
    const alice = await registerUser(t);
    const mallory = await registerUser(t);
    const prompt = upstream.prompt({ content: 'x y z' }, { chunkSize: 1, latency: 30 });
    const sent = expectData(await t.execute(SendMessageDocument, { input: { content: prompt } }, { token: alice.accessToken }));
    const result = await t.execute(StopGenerationDocument, { messageId: sent.sendMessage.assistantMessage.id }, { token: mallory.accessToken });
    expect(errorCodes(result)).toEqual(['NOT_FOUND']);
    expect((await waitForFinal(alice.accessToken, sent.sendMessage.assistantMessage.id)).status).toBe('COMPLETE');
  });

  it('keeps generating and records the upstream usage when the client of a non-streaming call goes away', async () => {
    const user = await registerUser(t);
    const prompt = upstream.prompt({ content: 'a reply nobody waits for', usage: { prompt_tokens: 7, completion_tokens: 9 } }, { chunkSize: 3, latency: 40 });
    const abort = new AbortController();
    const request = fetch(url, {
      method: 'POST',
      signal: abort.signal,
      headers: { 'content-type': 'application/json', authorization: `Bearer ${user.accessToken}` },
      body: JSON.stringify({ query: 'mutation($c: String!) { sendMessage(input: {content: $c, stream: false}) { assistantMessage { id } } }', variables: { c: prompt } }),
    });
    await upstream.waitForRequest(prompt);
    abort.abort();
    await expect(request).rejects.toThrow();
    const message = await waitFor('the reply to reach a final status', async () => {
      const found = await t.app.db.prisma.message.findFirst({ where: { user: { email: user.email }, role: 'ASSISTANT' } });
      return found && !['STREAMING', 'PENDING'].includes(found.status) ? found : undefined;
    });
    expect(message).toMatchObject({ status: 'COMPLETE', content: 'a reply nobody waits for', promptTokens: 7, completionTokens: 9, usageEstimated: false });
  });
});

describe('usage', () => {
  it('rolls usage up per day and reports totals, per conversation and per user', async () => {
    const user = await registerUser(t);
    const first = upstream.prompt({ content: 'a', usage: { prompt_tokens: 100, completion_tokens: 10 } });
    const sent = expectData(await t.execute(SendMessageDocument, { input: { content: first, stream: false } }, { token: user.accessToken }));
    const second = upstream.prompt({ content: 'b', usage: { prompt_tokens: 200, completion_tokens: 20 } });
    expectData(
      await t.execute(
        SendMessageDocument,
        { input: { conversationId: sent.sendMessage.conversation.id, content: second, stream: false } },
        { token: user.accessToken },
      ),
    );
    const conversation = expectData(
      await t.execute(ConversationDocument, { id: sent.sendMessage.conversation.id, first: 10 }, { token: user.accessToken }),
    ).conversation;
    expect(conversation?.usage).toEqual({ promptTokens: 300, cacheWriteTokens: 0, completionTokens: 30, totalTokens: 330, costMicros: 63, requests: 2 });

    const today = new Date().toISOString().slice(0, 10);
    const usage = expectData(await t.execute(UsageDocument, { from: today, to: today }, { token: user.accessToken })).me?.usage;
    expect(usage?.totals).toEqual({ promptTokens: 300, cacheWriteTokens: 0, completionTokens: 30, totalTokens: 330, costMicros: 63, requests: 2 });
    expect(usage?.daily).toEqual([{ date: today, promptTokens: 300, cacheWriteTokens: 0, completionTokens: 30, totalTokens: 330, costMicros: 63, requests: 2 }]);
    const lastYear = expectData(await t.execute(UsageDocument, { from: '2025-01-01', to: '2025-01-31' }, { token: user.accessToken })).me?.usage;
    expect(lastYear?.totals.totalTokens).toBe(0);
  });

  it('refuses inverted or over-long ranges', async () => {
    const user = await registerUser(t);
    expect(errorCodes(await t.execute(UsageDocument, { from: '2026-02-01', to: '2026-01-01' }, { token: user.accessToken }))).toEqual(['BAD_USER_INPUT']);
    expect(errorCodes(await t.execute(UsageDocument, { from: '2024-01-01', to: '2026-01-01' }, { token: user.accessToken }))).toEqual(['BAD_USER_INPUT']);
  });

  it('keeps message ids opaque: global ids decode to the stored row', async () => {
    const user = await registerUser(t);
    const prompt = upstream.prompt({ content: 'x' });
    const sent = expectData(await t.execute(SendMessageDocument, { input: { content: prompt, stream: false } }, { token: user.accessToken }));
    const row = await t.app.db.prisma.message.findUnique({ where: { id: rawId(sent.sendMessage.assistantMessage.id) } });
    expect(row?.content).toBe('x');
  });
});
