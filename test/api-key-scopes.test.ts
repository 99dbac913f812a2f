import { print } from 'graphql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeGlobalId } from '../src/graphql/global-id.js';
import { costMicros } from '../src/metering/prices.js';
import { estimatePromptTokens } from '../src/metering/tokens.js';
import { findModel } from '../src/model-catalog.js';
import { errorCodes, expectData, startTestApp, type TestApp } from './helpers/app.js';
import { registerUser } from './helpers/accounts.js';
import { CreateScopedApiKeyDocument, ApiKeySpendsDocument } from './helpers/api-key-documents.js';
import { MessageStreamDocument, SendMessageDocument } from './helpers/chat-documents.js';
import { MeDocument } from './helpers/documents.js';
import { MockUpstream } from './helpers/upstream.js';
import { connectWs, wsExecute } from './helpers/ws.js';

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
    const { secret, apiKey } = await keyFor(user.accessToken, { expiresAt: new Date(Date.now() + 3_600_000).toISOString() });
    expect(expectData(await t.execute(MeDocument, {}, { token: secret })).me).not.toBeNull();
    await t.app.db.prisma.apiKey.update({ where: { id: decodeGlobalId(apiKey.id).id }, data: { expiresAt: new Date(Date.now() - 1000) } });
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

describe('API key budgets', () => {
  it('holds each call against the key budget and refuses one over it with QUOTA_EXCEEDED, scope apiKey', async () => {
    const user = await registerUser(t);
    const maxTokens = 200;
    const prompt = upstream.prompt({ content: 'budgeted', usage: { prompt_tokens: 20, completion_tokens: 10 } }, { latency: 100 }, 'budget');
    const price = findModel(t.config.chat.models, 'gpt-4o-mini')!.price;
    const worst = costMicros(price, {
      promptTokens: estimatePromptTokens([{ role: 'user', content: prompt }]),
      cachedTokens: 0,
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

    const keys = expectData(await t.execute(ApiKeySpendsDocument, {}, { token: user.accessToken })).me!.apiKeys.edges;
    const messages = await t.app.db.prisma.message.findMany({ where: { userId: decodeGlobalId(user.user.id).id, role: 'ASSISTANT' } });
    const spent = messages.reduce((sum, m) => sum + Number(m.costMicros), 0);
    // Newest first: the key that made the calls, then the one refused outright.
    expect(keys.map((k) => k.node.spentThisMonthMicros)).toEqual([spent, 0]);
    expect(spent).toBeGreaterThan(0);
  });
});
