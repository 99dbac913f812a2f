import { print } from 'graphql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeGlobalId, encodeGlobalId } from '../src/global-id.js';
import { costMicros } from '../src/metering/prices.js';
import { estimatePromptTokens } from '../src/metering/tokens.js';
import { findModel } from '../src/model-catalog.js';
import { errorCodes, executeRaw, expectData, startTestApp, type TestApp } from './helpers/app.js';
import { registerUser } from './helpers/accounts.js';
import { CreateScopedApiKeyDocument, ApiKeySpendsDocument } from './helpers/api-key-documents.js';
import { MessageStreamDocument, SendMessageDocument } from './helpers/chat-documents.js';
import { MeDocument } from './helpers/documents.js';
import { MockUpstream } from './helpers/upstream.js';
import { waitFor } from './helpers/wait.js';
import { connectWs, followStream, wsExecute } from './helpers/ws.js';

let upstream: MockUpstream;
let t: TestApp;
let url: URL;
beforeAll(async () => {
  upstream = await MockUpstream.start();
  t = await startTestApp({ ...upstream.env });
  url = await t.app.start(0);
});
afterAll(async () => {
  await t.stop();
  await upstream.stop();
});

type KeyInput = { scopes?: Array<'CHAT' | 'READ' | 'ACCOUNT'>; monthlyBudgetMicros?: number; expiresAt?: string };

async function keyFor(accessToken: string, input: KeyInput = {}) {
  return expectData(await t.execute(CreateScopedApiKeyDocument, { input: { name: 'scoped', ...input } }, { token: accessToken })).createApiKey;
}

describe('API key scopes', () => {
  it('gives new keys CHAT and READ unless told otherwise', async () => {
    const user = await registerUser(t);
    expect((await keyFor(user.accessToken)).apiKey.scopes).toEqual(['CHAT', 'READ']);
  });

  it('lets a READ key read but not send, over HTTP and graphql-ws', async () => {
    const user = await registerUser(t);
    const { secret } = await keyFor(user.accessToken, { scopes: ['READ'] });
    expect(expectData(await t.execute(MeDocument, {}, { token: secret })).me?.email).toBe(user.email);

    const send = await t.execute(SendMessageDocument, { input: { content: 'not allowed' } }, { token: secret });
    expect(errorCodes(send)).toEqual(['FORBIDDEN']);
    const ws = connectWs(url, secret);
    try {
      expect(errorCodes(await wsExecute(ws, SendMessageDocument, { input: { content: 'not allowed' } }))).toEqual(['FORBIDDEN']);
    } finally {
      await ws.dispose();
    }
    expect(await t.app.db.prisma.message.count({ where: { userId: decodeGlobalId(user.user.id).id } })).toBe(0);
  });

  it('lets a CHAT key send but not read or follow streams', async () => {
    const user = await registerUser(t);
    const { secret } = await keyFor(user.accessToken, { scopes: ['CHAT'] });
    const prompt = upstream.prompt({ content: 'chat only' }, undefined, 'chat-key');
    const sent = expectData(await t.execute(SendMessageDocument, { input: { content: prompt, stream: false } }, { token: secret }));
    expect(errorCodes(await t.execute(MeDocument, {}, { token: secret }))).toEqual(['FORBIDDEN']);

    const ws = connectWs(url, secret);
    try {
      const messageId = sent.sendMessage.assistantMessage.id;
      // An error from starting the subscription arrives as a result with errors (or as an error).
      const followed = await new Promise<unknown>((resolve) => {
        ws.subscribe({ query: print(MessageStreamDocument), variables: { messageId } }, { next: resolve, error: resolve, complete: () => resolve(null) });
      });
      expect(JSON.stringify(followed)).toContain('FORBIDDEN');
    } finally {
      await ws.dispose();
    }
  });

  it('refuses an expired key as an invalid credential', async () => {
    const user = await registerUser(t);
    const expiresAt = new Date(Date.now() + 2000);
    const { secret } = await keyFor(user.accessToken, { expiresAt: expiresAt.toISOString() });
    expect(expectData(await t.execute(MeDocument, {}, { token: secret })).me).not.toBeNull();
    // Refused from that moment, though its viewer is cached for AUTH_CACHE_TTL_MS.
    await waitFor('the key to expire', () => Date.now() >= expiresAt.getTime());
    const refused = await t.execute(MeDocument, {}, { token: secret });
    expect(refused.status).toBe(401);
    expect(errorCodes(refused)).toEqual(['UNAUTHENTICATED']);
  });

  it('refuses bad key options and writes nothing', async () => {
    const user = await registerUser(t);
    const bad = [
      { scopes: [] },
      { monthlyBudgetMicros: -1 },
      { expiresAt: new Date(Date.now() - 60_000).toISOString() },
    ] as KeyInput[];
    for (const input of bad) {
      const result = await t.execute(CreateScopedApiKeyDocument, { input: { name: 'bad', ...input } }, { token: user.accessToken });
      expect(errorCodes(result)).toEqual(['BAD_USER_INPUT']);
    }
    expect(await t.app.db.prisma.apiKey.count({ where: { userId: decodeGlobalId(user.user.id).id } })).toBe(0);
  });
});

type Raw = Awaited<ReturnType<typeof executeRaw>>;
const raw = (token: string, query: string, variables?: Record<string, unknown>) => executeRaw(t, { query, variables }, { token });

/** The refused paths of a result, each as a dotted string, with their codes. */
const refusals = (result: Raw) =>
  (result.errors ?? []).map((e) => [e.path?.join('.'), e.extensions?.code]).sort((a, b) => String(a[0]).localeCompare(String(b[0])));

/** A user with a conversation of two earlier messages, an API key besides the ones under test, and a ledger. */
async function userWithHistory() {
  const user = await registerUser(t);
  const prompt = upstream.prompt({ content: 'an earlier reply nobody else may read' }, undefined, 'history');
  const sent = expectData(await t.execute(SendMessageDocument, { input: { content: prompt, stream: false } }, { token: user.accessToken }));
  await keyFor(user.accessToken, { scopes: ['READ'] });
  return { ...user, conversationId: sent.sendMessage.conversation.id };
}

// The reproduction: an ACCOUNT key changing the profile and reading everything back through it.
const UPDATE_PROFILE_READ_BACK = `mutation { updateProfile(input: {}) { conversations(first: 5) { edges { node { messages(last: 5) { edges { node { content } } } } } } apiKeys(first: 5) { edges { node { prefix } } } credits { ledger(first: 5) { edges { node { amountMicros } } } } } }`;

describe('API key scopes wherever the data appears', () => {
  it('gives an ACCOUNT key its profile change back, but none of the conversations, keys or ledger behind it', async () => {
    const user = await userWithHistory();
    const { secret } = await keyFor(user.accessToken, { scopes: ['ACCOUNT'] });

    const result = await raw(secret, UPDATE_PROFILE_READ_BACK);
    expect(result.data).toEqual({ updateProfile: { conversations: null, apiKeys: null, credits: null } });
    expect(refusals(result)).toEqual([
      ['updateProfile.apiKeys', 'FORBIDDEN'],
      ['updateProfile.conversations', 'FORBIDDEN'],
      ['updateProfile.credits', 'FORBIDDEN'],
    ]);
    expect(JSON.stringify(result)).not.toContain('nobody else may read');

    // The change itself is made and its own fields come back; usage and quota are refused too.
    const renamed = await raw(secret, `mutation { updateProfile(input: { name: "Renamed" }) { name email quota { usedTokens } usage { totals { totalTokens } daily { date } } } }`);
    expect(renamed.data).toEqual({ updateProfile: { name: 'Renamed', email: user.email, quota: null, usage: null } });
    expect(refusals(renamed)).toEqual([
      ['updateProfile.quota', 'FORBIDDEN'],
      ['updateProfile.usage', 'FORBIDDEN'],
    ]);
    expect(renamed.errors?.[0]?.message).toMatch(/API key with the READ scope/);
  });

  it('gives a CHAT key the messages it sent and the reply, not the rest of the conversation', async () => {
    const user = await userWithHistory();
    const { secret } = await keyFor(user.accessToken, { scopes: ['CHAT'] });
    const prompt = upstream.prompt({ content: 'the reply to the chat key' }, undefined, 'chat-payload');
    const result = await raw(
      secret,
      `mutation ($input: SendMessageInput!) { sendMessage(input: $input) {
        conversation { id title messageCount messages(last: 5) { edges { node { content } } } usage { totalTokens } }
        userMessage { content conversation { messages(first: 5) { totalCount } } }
        assistantMessage { content status }
      } }`,
      { input: { conversationId: user.conversationId, content: prompt, stream: false } },
    );
    expect(result.data?.sendMessage).toEqual({
      conversation: { id: user.conversationId, title: expect.any(String), messageCount: 4, messages: null, usage: null },
      userMessage: { content: prompt, conversation: null },
      assistantMessage: { content: 'the reply to the chat key', status: 'COMPLETE' },
    });
    expect(refusals(result)).toEqual([
      ['sendMessage.conversation.messages', 'FORBIDDEN'],
      ['sendMessage.conversation.usage', 'FORBIDDEN'],
      ['sendMessage.userMessage.conversation', 'FORBIDDEN'],
    ]);
    expect(JSON.stringify(result)).not.toContain('nobody else may read');
  });

  it('gives a CHAT key the conversation it changed, not its messages or usage', async () => {
    const user = await userWithHistory();
    const { secret } = await keyFor(user.accessToken, { scopes: ['CHAT'] });
    const result = await raw(
      secret,
      `mutation ($id: ID!) { updateConversation(input: { id: $id, title: "Renamed" }) { id title messages(first: 5) { edges { node { content conversation { title } } } } usage { costMicros } } }`,
      { id: user.conversationId },
    );
    expect(result.data).toEqual({ updateConversation: { id: user.conversationId, title: 'Renamed', messages: null, usage: null } });
    expect(refusals(result)).toEqual([
      ['updateConversation.messages', 'FORBIDDEN'],
      ['updateConversation.usage', 'FORBIDDEN'],
    ]);

    const created = await raw(secret, `mutation { createConversation(input: { title: "New" }) { title messages { totalCount } } }`);
    expect(created.data).toEqual({ createConversation: { title: 'New', messages: null } });
    expect(refusals(created)).toEqual([['createConversation.messages', 'FORBIDDEN']]);
  });

  it('lets a READ key read conversations, usage, quota and balances, but not keys or the ledger without ACCOUNT', async () => {
    const user = await userWithHistory();
    const ledgerEntry = await t.app.db.prisma.creditLedgerEntry.findFirst({ where: { userId: decodeGlobalId(user.user.id).id } });
    const apiKey = await t.app.db.prisma.apiKey.findFirst({ where: { userId: decodeGlobalId(user.user.id).id } });
    const query = `query ($entry: ID!, $key: ID!) { me {
      conversations(first: 5) { edges { node { messages(first: 5) { edges { node { content } } } usage { totalTokens } } } }
      usage { totals { requests } daily { requests } } quota { usedTokens } credits { balanceMicros ledger(first: 5) { totalCount } }
      apiKeys(first: 5) { totalCount } }
      entry: node(id: $entry) { id } key: node(id: $key) { id } }`;
    const variables = { entry: encodeGlobalId('CreditLedgerEntry', ledgerEntry!.id), key: encodeGlobalId('ApiKey', apiKey!.id) };

    const readOnly = await raw((await keyFor(user.accessToken, { scopes: ['READ'] })).secret, query, variables);
    const me = readOnly.data?.me as { conversations: unknown; usage: unknown; quota: unknown; credits: { balanceMicros: number; ledger: unknown }; apiKeys: unknown };
    expect(JSON.stringify(me.conversations)).toContain('nobody else may read');
    expect(me.usage).toMatchObject({ totals: { requests: 1 } });
    expect(me.quota).toMatchObject({ usedTokens: expect.any(Number) });
    expect(me.credits).toEqual({ balanceMicros: expect.any(Number), ledger: null });
    expect(me.apiKeys).toBeNull();
    expect(readOnly.data).toMatchObject({ entry: null, key: null });
    expect(refusals(readOnly)).toEqual([
      ['entry', 'FORBIDDEN'],
      ['key', 'FORBIDDEN'],
      ['me.apiKeys', 'FORBIDDEN'],
      ['me.credits.ledger', 'FORBIDDEN'],
    ]);
    expect(readOnly.errors?.[0]?.message).toMatch(/API key with the READ and ACCOUNT scopes/);

    const withAccount = await raw((await keyFor(user.accessToken, { scopes: ['READ', 'ACCOUNT'] })).secret, query, variables);
    expect(withAccount.errors).toBeUndefined();
    expect(withAccount.data).toMatchObject({
      // The sign-up grant and the reply's usage; the key of the history and the two made here.
      me: { credits: { ledger: { totalCount: 2 } }, apiKeys: { totalCount: 3 } },
      entry: { id: variables.entry },
      key: { id: variables.key },
    });
  });

  it('keeps full access for a session token', async () => {
    const user = await userWithHistory();
    const result = await raw(user.accessToken, UPDATE_PROFILE_READ_BACK);
    expect(result.errors).toBeUndefined();
    expect(JSON.stringify(result.data)).toContain('nobody else may read');
    expect(result.data).toMatchObject({
      updateProfile: { apiKeys: { edges: [expect.anything()] }, credits: { ledger: { edges: [expect.anything(), expect.anything()] } } },
    });
  });

  it("gives a READ key's subscriber the final message and its usage", async () => {
    const user = await registerUser(t);
    const { secret } = await keyFor(user.accessToken, { scopes: ['CHAT', 'READ'] });
    const prompt = upstream.prompt({ content: 'streamed to a read key' }, { chunkSize: 4 }, 'stream-read');
    const sent = expectData(await t.execute(SendMessageDocument, { input: { content: prompt, stream: true } }, { token: secret }));
    const events = await followStream(url, secret, sent.sendMessage.assistantMessage.id, (seen) => seen.at(-1)?.done === true);
    const last = events.at(-1)!;
    expect(last.message).toMatchObject({ content: 'streamed to a read key', status: 'COMPLETE' });
    expect(last.usage).toMatchObject({ totalTokens: expect.any(Number) });
  });
});

describe('API key budgets', () => {
  it('holds each call against the key budget and refuses one over it with QUOTA_EXCEEDED, scope apiKey', async () => {
    const user = await registerUser(t);
    const maxTokens = 200;
    const prompt = upstream.prompt({ content: 'budgeted', usage: { prompt_tokens: 20, completion_tokens: 10 } }, { latency: 100 }, 'budget');
    const price = findModel(t.config.chat.models, 'gpt-4o-mini')!.price;
    const worst = costMicros(price, {
      promptTokens: estimatePromptTokens([{ role: 'user', content: prompt }]),
      cachedTokens: 0,
      cacheWriteTokens: 0,
      completionTokens: maxTokens,
      reasoningTokens: 0,
    });
    const send = (token: string) => t.execute(SendMessageDocument, { input: { content: prompt, maxTokens, stream: false } }, { token });

    // A budget below one worst case refuses the call outright, writing nothing.
    const small = await keyFor(user.accessToken, { monthlyBudgetMicros: Number(worst / 2n) });
    const refusedOutright = await send(small.secret);
    expect(errorCodes(refusedOutright)).toEqual(['QUOTA_EXCEEDED']);
    expect(refusedOutright.errors?.[0]?.extensions).toMatchObject({ scope: 'apiKey', budgetMicros: Number(worst / 2n) });
    expect(await t.app.db.prisma.message.count({ where: { userId: decodeGlobalId(user.user.id).id } })).toBe(0);

    // Room for one worst case and a half: concurrent calls beyond the first are refused while it runs.
    const { secret } = await keyFor(user.accessToken, { monthlyBudgetMicros: Number((worst * 3n) / 2n) });
    const results = await Promise.all(Array.from({ length: 5 }, () => send(secret)));
    const refused = results.filter((r) => r.errors);
    expect(results.length - refused.length).toBeGreaterThanOrEqual(1);
    expect(refused.length).toBeGreaterThanOrEqual(1);
    for (const result of refused) {
      expect(errorCodes(result)).toEqual(['QUOTA_EXCEEDED']);
      expect(result.errors?.[0]?.extensions).toMatchObject({ scope: 'apiKey' });
    }

    const keys = expectData(await t.execute(ApiKeySpendsDocument, {}, { token: user.accessToken })).me!.apiKeys!.edges;
    const messages = await t.app.db.prisma.message.findMany({ where: { userId: decodeGlobalId(user.user.id).id, role: 'ASSISTANT' } });
    const spent = messages.reduce((sum, m) => sum + Number(m.costMicros), 0);
    // Newest first: the key that made the calls, then the one refused outright.
    expect(keys.map((k) => k.node.spentThisMonthMicros)).toEqual([spent, 0]);
    expect(spent).toBeGreaterThan(0);
  });
});
