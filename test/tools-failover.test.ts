import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerUser } from './helpers/accounts.js';
import { expectData, startTestApp, type TestApp } from './helpers/app.js';
import { MessageAttemptsDocument } from './helpers/failover-documents.js';
import { SendWithToolsDocument } from './helpers/tool-documents.js';
import { followToolStreamOverWs, toolCallsFromDeltas } from './helpers/tool-streams.js';
import { MockUpstream } from './helpers/upstream.js';

const WEATHER = { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } };
const CALLS = [{ id: 'call_paris', name: 'get_weather', arguments: '{"city":"Paris","unit":"celsius"}' }];

describe('failover of a reply that asks for tools', () => {
  let upstream: MockUpstream;
  let t: TestApp;
  let url: URL;
  beforeAll(async () => {
    upstream = await MockUpstream.start();
    // Two providers on the same mock, both taking a prefill: a reply cut in plain text would be continued.
    const provider = (id: string) => ({ id, kind: 'openai-compatible', baseUrl: `${upstream.mock.url}/v1`, apiKey: 'sk-test', prefill: true });
    t = await startTestApp({
      PROVIDERS_JSON: JSON.stringify([provider('first'), provider('second')]),
      MODELS_JSON: JSON.stringify([
        {
          id: 'tools-failover',
          contextWindow: 128_000,
          maxOutputTokens: 1000,
          promptMicrosPerMillion: 1_000_000,
          completionMicrosPerMillion: 2_000_000,
          deployments: [
            { provider: 'first', model: 'cuts-mid-arguments' },
            { provider: 'second', model: 'answers-whole' },
          ],
        },
      ]),
      SIGNUP_CREDITS_MICROS: '10000000',
    });
    url = await t.app.start(0);
  });
  afterAll(async () => {
    await t.stop();
    await upstream.stop();
  });

  it('restarts on the next target, with a reset, a reply cut in the middle of its tool-call arguments', async () => {
    const prompt = `weather ${randomUUID()}`;
    const lastUser = (messages: ReadonlyArray<{ role: string; content?: unknown }>) => messages.filter((m) => m.role === 'user').at(-1)?.content;
    const reply = { content: 'Checking.', toolCalls: CALLS };
    // The first deployment breaks off after its text and part of the arguments.
    upstream.mock.on({ predicate: (req) => req.model === 'cuts-mid-arguments' && lastUser(req.messages) === prompt }, reply, { chunkSize: 6, truncateAfterChunks: 6, latency: 20 });
    upstream.mock.on({ predicate: (req) => req.model === 'answers-whole' && lastUser(req.messages) === prompt }, reply, { chunkSize: 6 });

    const user = await registerUser(t);
    const sent = expectData(
      await t.execute(SendWithToolsDocument, { input: { content: prompt, model: 'tools-failover', tools: [WEATHER] } }, { token: user.accessToken }),
    ).sendMessage;
    const events = await followToolStreamOverWs(url, user.accessToken, sent.assistantMessage.id);

    const resetAt = events.findIndex((e) => e.reset);
    expect(resetAt).toBeGreaterThan(0);
    // Part of a call had reached the subscriber before the cut; after the reset it gets the whole reply anew.
    expect(events.slice(0, resetAt).some((e) => e.toolCallDeltas.length > 0)).toBe(true);
    expect(events.slice(resetAt).map((e) => e.delta).join('')).toBe('Checking.');
    expect(toolCallsFromDeltas(events)).toEqual(CALLS);
    expect(events.at(-1)?.message).toMatchObject({ status: 'COMPLETE', finishReason: 'tool_calls', content: 'Checking.', toolCalls: CALLS });

    const read = expectData(await t.execute(MessageAttemptsDocument, { id: sent.assistantMessage.id }, { token: user.accessToken }));
    const attempts = (read.node as { attempts: Array<{ provider: string; outcome: string; continued: boolean; billed: boolean }> }).attempts;
    expect(attempts.map((a) => [a.provider, a.outcome, a.continued, a.billed])).toEqual([
      ['first', 'CUT', false, false],
      ['second', 'OK', false, true],
    ]);
    // Restarted, not continued: no half-written reply was sent as a prefill.
    const restarted = upstream.requestsFor(prompt).find((r) => r.model === 'answers-whole');
    expect(restarted?.messages.at(-1)).toMatchObject({ role: 'user', content: prompt });
  });
});
