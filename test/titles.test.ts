import { join } from 'node:path';
import { isChatCompletionBody } from '@copilotkit/aimock';
import { describe, expect, inject, it } from 'vitest';
import { openDatabase, type DatabaseTarget } from '../src/db/client.js';
import { decodeGlobalId } from '../src/global-id.js';
import { registerUser } from './helpers/accounts.js';
import { expectData, startTestApp, startWithUpstreamForFile, testDatabase, type TestApp } from './helpers/app.js';
import { ConversationDocument, SendMessageDocument, UpdateConversationDocument, UsageDocument } from './helpers/chat-documents.js';
import { dataDirFromTemplate } from './helpers/leftovers.js';
import { AccountBalanceDocument } from './helpers/metering-documents.js';
import { MockUpstream } from './helpers/upstream.js';
import { waitFor } from './helpers/wait.js';

const SIZE = { contextWindow: 128_000, maxOutputTokens: 16_384 };
const MODELS = [
  { ...SIZE, id: 'gpt-4o-mini', promptMicrosPerMillion: 150_000, completionMicrosPerMillion: 600_000 },
  { ...SIZE, id: 'title-mini', promptMicrosPerMillion: 100_000, completionMicrosPerMillion: 400_000 },
  { ...SIZE, id: 'free-chat', free: true },
];
const TITLED = { MODELS_JSON: JSON.stringify(MODELS), TITLE_MODEL: 'title-mini' };
// 1000 × $0.15/M + 2000 × $0.60/M = 1350 micro-dollars; the title: 500 × $0.10/M + 10 × $0.40/M = 54.
const REPLY_USAGE = { prompt_tokens: 1000, completion_tokens: 2000 };
const TITLE_USAGE = { prompt_tokens: 500, completion_tokens: 10 };

/** A gate a fixture's answer waits on, and a signal that the request reached it. */
function gate() {
  let open!: () => void;
  let reached!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  const arrived = new Promise<void>((resolve) => (reached = resolve));
  return { open, opened, reached, arrived };
}

/** The title model's requests about a first message. */
function titleRequests(upstream: MockUpstream, prompt: string) {
  return upstream.mock
    .getRequests()
    .map((entry) => entry.body)
    .filter(isChatCompletionBody)
    .filter((body) => body.model === 'title-mini' && JSON.stringify(body.messages).includes(prompt));
}

async function conversationTitle(t: TestApp, token: string, id: string) {
  return expectData(await t.execute(ConversationDocument, { id }, { token })).conversation!.title;
}

async function usageTotals(t: TestApp, token: string) {
  return expectData(await t.execute(UsageDocument, {}, { token })).me!.usage!.totals;
}

describe('conversation titles by a model', () => {
  let t: TestApp;
  let upstream: MockUpstream;
  startWithUpstreamForFile(
    (app, mock) => {
      t = app;
      upstream = mock;
    },
    TITLED,
  );

  /** Starts a conversation with a fresh prompt, whose title call gets `title` (an answer or a failure). */
  async function startConversation(token: string, title: Parameters<MockUpstream['mock']['on']>[1], options?: { label?: string }) {
    const prompt = upstream.prompt({ content: 'Paris is the capital of France.', usage: REPLY_USAGE }, undefined, options?.label);
    upstream.mock.on({ model: 'title-mini', userMessage: prompt }, title);
    // Streamed: the send answers before the reply ends, so with the title it wrote, never the model's.
    const sent = expectData(await t.execute(SendMessageDocument, { input: { content: prompt, model: 'gpt-4o-mini' } }, { token })).sendMessage;
    return { prompt, conversationId: sent.conversation.id, firstLineTitle: sent.conversation.title };
  }

  it("titles a new conversation with the title model's answer after its first reply, and charges the user for it", async () => {
    const user = await registerUser(t);
    const { prompt, conversationId, firstLineTitle } = await startConversation(user.accessToken, {
      content: '"Capital of France."\nA second line',
      usage: TITLE_USAGE,
    });
    expect(firstLineTitle).toBe(prompt);

    await waitFor('the model title', async () => (await conversationTitle(t, user.accessToken, conversationId)) === 'Capital of France');
    const [request] = titleRequests(upstream, prompt);
    expect(request).toMatchObject({ model: 'title-mini', max_tokens: 24, temperature: 0.2 });
    expect(request!.messages.at(-1)!.content).toContain('Assistant: Paris is the capital of France.');

    // The title call is counted beside the reply, at the title model's price.
    await waitFor('the title call in the usage', async () => (await usageTotals(t, user.accessToken)).requests === 2);
    expect(await usageTotals(t, user.accessToken)).toMatchObject({ promptTokens: 1500, completionTokens: 2010, totalTokens: 3510, costMicros: 1404 });
    const credits = expectData(await t.execute(AccountBalanceDocument, {}, { token: user.accessToken })).me!.credits!;
    expect(credits.heldMicros).toBe(0);
    expect(credits.ledger!.edges.map((e) => e.node)).toContainEqual(expect.objectContaining({ kind: 'USAGE', amountMicros: -54, reason: 'title-mini: 510 tokens' }));
  });

  it('keeps a name the user gave the conversation while its title was being written', async () => {
    const user = await registerUser(t);
    const answer = gate();
    const { conversationId } = await startConversation(user.accessToken, async () => {
      answer.reached();
      await answer.opened;
      return { content: 'Capital of France', usage: TITLE_USAGE };
    });
    await answer.arrived;
    expectData(await t.execute(UpdateConversationDocument, { input: { id: conversationId, title: 'Geography homework' } }, { token: user.accessToken }));
    answer.open();

    // Charged once the title step is over: the title is written before the call is settled.
    await waitFor('the title call to be charged', async () => (await usageTotals(t, user.accessToken)).requests === 2);
    expect(await conversationTitle(t, user.accessToken, conversationId)).toBe('Geography homework');
  });

  it('does not title a conversation again on its next message', async () => {
    const user = await registerUser(t);
    const { conversationId } = await startConversation(user.accessToken, { content: 'Capital of France', usage: TITLE_USAGE });
    await waitFor('the model title', async () => (await conversationTitle(t, user.accessToken, conversationId)) === 'Capital of France');

    const next = upstream.prompt({ content: 'About two million people.' }, undefined, 'next');
    upstream.mock.on({ model: 'title-mini', userMessage: next }, { content: 'Population of Paris' });
    expectData(await t.execute(SendMessageDocument, { input: { conversationId, content: next, stream: false } }, { token: user.accessToken }));
    // Another new conversation's title, asked for after the next reply ended, has come: a title for the next message would have too.
    const later = await startConversation(user.accessToken, { content: 'Later' }, { label: 'later' });
    await waitFor('a later title', async () => (await conversationTitle(t, user.accessToken, later.conversationId)) === 'Later');

    expect(titleRequests(upstream, next)).toHaveLength(0);
    expect(await conversationTitle(t, user.accessToken, conversationId)).toBe('Capital of France');
  });

  it('leaves the first-line title, and charges nothing, when the title call fails', async () => {
    const user = await registerUser(t);
    const { prompt, conversationId, firstLineTitle } = await startConversation(user.accessToken, {
      error: { message: 'the title model is down', type: 'server_error' },
      status: 500,
    });
    await waitFor('the title request', () => titleRequests(upstream, prompt).length > 0);
    // The title call's hold is released once it has failed.
    await waitFor('the title hold to be released', async () => {
      const me = expectData(await t.execute(AccountBalanceDocument, {}, { token: user.accessToken })).me!;
      return me.credits!.heldMicros === 0 && me.quota!.reservedTokens === 0;
    });
    expect(await conversationTitle(t, user.accessToken, conversationId)).toBe(firstLineTitle);
    expect(await usageTotals(t, user.accessToken)).toMatchObject({ requests: 1, costMicros: 1350 });
  });
});

describe('conversation titles for a user who cannot pay for them', () => {
  let t: TestApp;
  let upstream: MockUpstream;
  startWithUpstreamForFile(
    (app, mock) => {
      t = app;
      upstream = mock;
    },
    { ...TITLED, SIGNUP_CREDITS_MICROS: '0' },
  );

  it('keeps the first-line title without a title call or an error', async () => {
    const user = await registerUser(t);
    const prompt = upstream.prompt({ content: 'Free answer.' });
    upstream.mock.on({ model: 'title-mini', userMessage: prompt }, { content: 'Never asked for' });
    const sent = expectData(
      await t.execute(SendMessageDocument, { input: { content: prompt, model: 'free-chat', stream: false } }, { token: user.accessToken }),
    ).sendMessage;
    expect(sent.assistantMessage.status).toBe('COMPLETE');
    // A full round trip later the title call, had it been made, would have reached the upstream.
    const next = upstream.prompt({ content: 'Still free.' });
    expectData(await t.execute(SendMessageDocument, { input: { conversationId: sent.conversation.id, content: next, stream: false } }, { token: user.accessToken }));

    expect(titleRequests(upstream, prompt)).toHaveLength(0);
    expect(await conversationTitle(t, user.accessToken, sent.conversation.id)).toBe(prompt);
  });
});

describe('conversation titles off (the default)', () => {
  let t: TestApp;
  let upstream: MockUpstream;
  startWithUpstreamForFile(
    (app, mock) => {
      t = app;
      upstream = mock;
    },
    { MODELS_JSON: JSON.stringify(MODELS) },
  );

  it('makes no title call: the first line of the first message stays the title', async () => {
    const user = await registerUser(t);
    const prompt = upstream.prompt({ content: 'An answer.' });
    const sent = expectData(await t.execute(SendMessageDocument, { input: { content: prompt, stream: false } }, { token: user.accessToken })).sendMessage;
    const next = upstream.prompt({ content: 'Another answer.' });
    expectData(await t.execute(SendMessageDocument, { input: { conversationId: sent.conversation.id, content: next, stream: false } }, { token: user.accessToken }));

    const sentUpstream = upstream.mock.getRequests().map((entry) => entry.body).filter(isChatCompletionBody);
    expect(sentUpstream.filter((body) => JSON.stringify(body.messages).includes(prompt))).toHaveLength(2);
    expect(await conversationTitle(t, user.accessToken, sent.conversation.id)).toBe(prompt);
  });
});

/** A database that outlives the app, so that what stop() left behind can be read afterwards. */
function lastingDatabase(): DatabaseTarget {
  const target = testDatabase();
  if (target.kind === 'postgres') return target;
  return { kind: 'pglite', dataDir: join(dataDirFromTemplate('sb-titles', inject('pgliteDataDirTemplate')), 'pglite') };
}

describe('conversation titles at shutdown', () => {
  it('stops a title call in flight and settles its reservation before the database closes', async () => {
    const upstream = await MockUpstream.start();
    const database = lastingDatabase();
    const t = await startTestApp({ ...upstream.env, ...TITLED }, { database });
    const user = await registerUser(t);
    const prompt = upstream.prompt({ content: 'Paris.', usage: REPLY_USAGE });
    const answer = gate();
    upstream.mock.on({ model: 'title-mini', userMessage: prompt }, async () => {
      answer.reached();
      await answer.opened;
      return { content: 'Too late' };
    });
    const sent = expectData(await t.execute(SendMessageDocument, { input: { content: prompt, model: 'gpt-4o-mini', stream: false } }, { token: user.accessToken })).sendMessage;
    await answer.arrived;

    await t.stop();
    answer.open();
    const db = await openDatabase(database);
    try {
      const userId = decodeGlobalId(user.user.id).id;
      const reservations = await db.prisma.reservation.findMany({ where: { userId, kind: 'TITLE' } });
      expect(reservations).toHaveLength(1);
      expect(reservations[0]).toMatchObject({ settledBy: 'RUN', settledAt: expect.any(Date) });
      const conversation = await db.prisma.conversation.findUniqueOrThrow({ where: { id: decodeGlobalId(sent.conversation.id).id } });
      expect(conversation.title).toBe(prompt);
    } finally {
      await db.close();
    }
  });
});
