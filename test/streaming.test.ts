import { print } from 'graphql';
import type { Client } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorCodes, expectData, startTestApp, type TestApp } from './helpers/app.js';
import { registerUser } from './helpers/accounts.js';
import { MessageStreamDocument, SendMessageDocument } from './helpers/chat-documents.js';
import { MockUpstream } from './helpers/upstream.js';
import { connectWs } from './helpers/ws.js';

let upstream: MockUpstream;
let t: TestApp;
let url: URL;
beforeAll(async () => {
  upstream = await MockUpstream.start();
  t = await startTestApp(upstream.env);
  url = await t.app.start(0);
});
afterAll(async () => {
  await t.stop();
  await upstream.stop();
});

type StreamEvent = {
  seq: number;
  delta: string;
  done: boolean;
  message?: { status: string; content: string; totalTokens: number } | null;
  usage?: { promptTokens: number; completionTokens: number; totalTokens: number; costMicros: number; estimated: boolean } | null;
};

/** Collects a messageStream subscription over graphql-ws until it completes. */
function collect(client: Client, messageId: string, onEvent?: (event: StreamEvent) => void) {
  return new Promise<{ events: StreamEvent[]; errors: unknown[] }>((resolve, reject) => {
    const events: StreamEvent[] = [];
    const errors: unknown[] = [];
    client.subscribe<{ messageStream: StreamEvent }>(
      { query: print(MessageStreamDocument), variables: { messageId } },
      {
        next: (result) => {
          if (result.errors) errors.push(...result.errors);
          if (result.data) {
            events.push(result.data.messageStream);
            onEvent?.(result.data.messageStream);
          }
        },
        error: (error) => (Array.isArray(error) ? resolve({ events, errors: error }) : reject(error)),
        complete: () => resolve({ events, errors }),
      },
    );
  });
}

function expectWholeStream(events: StreamEvent[], text: string) {
  expect(events.map((e) => e.seq)).toEqual(events.map((_, i) => i + 1));
  expect(events.map((e) => e.delta).join('')).toBe(text);
  expect(events.filter((e) => e.done)).toHaveLength(1);
  expect(events.at(-1)?.done).toBe(true);
}

const REPLY = 'Streaming replies arrive token by token, in order, exactly once.';

async function startStreaming(token: string, options: { latency?: number; chunkSize?: number } = {}) {
  const prompt = upstream.prompt(
    { content: REPLY, usage: { prompt_tokens: 12, completion_tokens: 34 } },
    { chunkSize: options.chunkSize ?? 4, latency: options.latency ?? 15 },
  );
  const sent = expectData(await t.execute(SendMessageDocument, { input: { content: prompt } }, { token })).sendMessage;
  expect(sent.assistantMessage.status).toBe('STREAMING');
  return sent.assistantMessage.id;
}

describe('messageStream over graphql-ws', () => {
  it('streams ordered deltas and ends with the persisted message and its usage', async () => {
    const user = await registerUser(t);
    const client = connectWs(url, user.accessToken);
    try {
      const messageId = await startStreaming(user.accessToken);
      const { events, errors } = await collect(client, messageId);
      expect(errors).toEqual([]);
      expectWholeStream(events, REPLY);
      expect(events.length).toBeGreaterThan(5);
      const last = events.at(-1)!;
      expect(last.message).toMatchObject({ status: 'COMPLETE', content: REPLY, totalTokens: 46 });
      expect(last.usage).toEqual({ promptTokens: 12, completionTokens: 34, totalTokens: 46, costMicros: 23, estimated: false });
      expect(events.slice(0, -1).every((e) => e.message === null && e.usage === null)).toBe(true);
    } finally {
      await client.dispose();
    }
  });

  it('replays what was already generated to a subscriber that joins late, then continues live', async () => {
    const user = await registerUser(t);
    const early = connectWs(url, user.accessToken);
    const late = connectWs(url, user.accessToken);
    try {
      const messageId = await startStreaming(user.accessToken, { latency: 40 });
      let joinLate: () => void = () => {};
      const halfway = new Promise<void>((resolve) => (joinLate = resolve));
      const earlyRun = collect(early, messageId, (e) => e.seq === 5 && joinLate());
      await halfway;
      const lateRun = collect(late, messageId);
      const [earlyResult, lateResult] = await Promise.all([earlyRun, lateRun]);
      expectWholeStream(earlyResult.events, REPLY);
      expectWholeStream(lateResult.events, REPLY);
      expect(lateResult.events.map((e) => e.seq)).toEqual(earlyResult.events.map((e) => e.seq));
    } finally {
      await early.dispose();
      await late.dispose();
    }
  });

  it('gives the whole reply to several subscribers at once', async () => {
    const user = await registerUser(t);
    const clients = [0, 1, 2].map(() => connectWs(url, user.accessToken));
    try {
      const messageId = await startStreaming(user.accessToken);
      const results = await Promise.all(clients.map((client) => collect(client, messageId)));
      for (const { events } of results) expectWholeStream(events, REPLY);
    } finally {
      await Promise.all(clients.map((c) => c.dispose()));
    }
  });

  it('replays a finished reply to a subscriber that arrives after the end', async () => {
    const user = await registerUser(t);
    const prompt = upstream.prompt({ content: REPLY });
    const sent = expectData(await t.execute(SendMessageDocument, { input: { content: prompt, stream: false } }, { token: user.accessToken }));
    const client = connectWs(url, user.accessToken);
    try {
      const { events } = await collect(client, sent.sendMessage.assistantMessage.id);
      expectWholeStream(events, REPLY);
      expect(events.at(-1)?.message?.status).toBe('COMPLETE');
    } finally {
      await client.dispose();
    }
  });

  it("refuses to stream another user's message", async () => {
    const alice = await registerUser(t);
    const mallory = await registerUser(t);
    const messageId = await startStreaming(alice.accessToken);
    const client = connectWs(url, mallory.accessToken);
    try {
      const { events, errors } = await collect(client, messageId);
      expect(events).toEqual([]);
      expect(errors.map((e) => (e as { extensions?: { code?: string } }).extensions?.code)).toEqual(['NOT_FOUND']);
    } finally {
      await client.dispose();
    }
  });

  it('requires authentication', async () => {
    const alice = await registerUser(t);
    const messageId = await startStreaming(alice.accessToken);
    const anonymous = await t.execute(MessageStreamDocument, { messageId });
    expect(errorCodes(anonymous)).toEqual(['UNAUTHENTICATED']);
  });
});

describe('messageStream over server-sent events', () => {
  it('streams the same events over SSE', async () => {
    const user = await registerUser(t);
    const messageId = await startStreaming(user.accessToken);
    const response = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream', authorization: `Bearer ${user.accessToken}` },
      body: JSON.stringify({ query: print(MessageStreamDocument), variables: { messageId } }),
    });
    expect(response.headers.get('content-type')).toContain('text/event-stream');
    const body = await response.text();
    const events = body
      .split('\n')
      .filter((line) => line.startsWith('data: '))
      .map((line) => JSON.parse(line.slice(6)))
      .filter((payload) => payload.data)
      .map((payload) => payload.data.messageStream as StreamEvent);
    expectWholeStream(events, REPLY);
  });
});
