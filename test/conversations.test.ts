import { describe, expect, it } from 'vitest';
import { titleFromMessage } from '../src/chat/conversations.js';
import { errorCodes, expectData, startWithUpstreamForFile, type TestApp } from './helpers/app.js';
import { registerUser } from './helpers/accounts.js';
import {
  ConversationDocument,
  CreateConversationDocument,
  DeleteConversationDocument,
  MyConversationsDocument,
  SendMessageDocument,
  UpdateConversationDocument,
} from './helpers/chat-documents.js';
import { MockUpstream } from './helpers/upstream.js';

let upstream: MockUpstream;
let t: TestApp;
startWithUpstreamForFile((app, mock) => {
  t = app;
  upstream = mock;
});

describe('conversation lifecycle', () => {
  it('creates, renames, changes model and system prompt, and deletes', async () => {
    const user = await registerUser(t);
    const created = expectData(
      await t.execute(CreateConversationDocument, { input: { title: ' Trip plans ', systemPrompt: 'Be brief.' } }, { token: user.accessToken }),
    ).createConversation;
    expect(created).toMatchObject({ title: 'Trip plans', model: 'gpt-4o-mini', systemPrompt: 'Be brief.' });

    const updated = expectData(
      await t.execute(
        UpdateConversationDocument,
        { input: { id: created.id, title: 'Holiday', model: 'gpt-4o', systemPrompt: '' } },
        { token: user.accessToken },
      ),
    ).updateConversation;
    expect(updated).toMatchObject({ title: 'Holiday', model: 'gpt-4o', systemPrompt: null });

    expect(expectData(await t.execute(DeleteConversationDocument, { id: created.id }, { token: user.accessToken })).deleteConversation).toBe(
      created.id,
    );
    expect(expectData(await t.execute(ConversationDocument, { id: created.id }, { token: user.accessToken })).conversation).toBeNull();
    expect(errorCodes(await t.execute(DeleteConversationDocument, { id: created.id }, { token: user.accessToken }))).toEqual(['NOT_FOUND']);
  });

  it('titles a conversation from its first message when none was given', async () => {
    const user = await registerUser(t);
    const created = expectData(await t.execute(CreateConversationDocument, { input: {} }, { token: user.accessToken })).createConversation;
    expect(created.title).toBe('New conversation');
    const prompt = upstream.prompt({ content: 'ok' }, undefined, 'What should I pack for a week of hiking in the Alps in late September?');
    const sent = expectData(
      await t.execute(SendMessageDocument, { input: { conversationId: created.id, content: prompt, stream: false } }, { token: user.accessToken }),
    ).sendMessage;
    expect(sent.conversation.title).toBe('What should I pack for a week of hiking in the Alps in late…');
  });

  it('cuts generated titles at a word boundary and keeps the first line', () => {
    expect(titleFromMessage('Short question?\nWith details below')).toBe('Short question?');
    expect(titleFromMessage('   ')).toBe('New conversation');
    expect(titleFromMessage('x'.repeat(80))).toBe(`${'x'.repeat(60)}…`);
  });

  it('validates input', async () => {
    const user = await registerUser(t);
    const longTitle = await t.execute(CreateConversationDocument, { input: { title: 'x'.repeat(201) } }, { token: user.accessToken });
    expect(errorCodes(longTitle)).toEqual(['BAD_USER_INPUT']);
    const badModel = await t.execute(CreateConversationDocument, { input: { model: 'nope' } }, { token: user.accessToken });
    expect(errorCodes(badModel)).toEqual(['BAD_USER_INPUT']);
    expect(errorCodes(await t.execute(CreateConversationDocument, { input: {} }))).toEqual(['UNAUTHENTICATED']);
  });

  it("keeps other users' conversations invisible and untouchable", async () => {
    const alice = await registerUser(t);
    const mallory = await registerUser(t);
    const created = expectData(await t.execute(CreateConversationDocument, { input: { title: 'secret' } }, { token: alice.accessToken }))
      .createConversation;
    expect(expectData(await t.execute(ConversationDocument, { id: created.id }, { token: mallory.accessToken })).conversation).toBeNull();
    const rename = await t.execute(UpdateConversationDocument, { input: { id: created.id, title: 'pwned' } }, { token: mallory.accessToken });
    expect(errorCodes(rename)).toEqual(['NOT_FOUND']);
    expect(errorCodes(await t.execute(DeleteConversationDocument, { id: created.id }, { token: mallory.accessToken }))).toEqual(['NOT_FOUND']);
    const still = expectData(await t.execute(ConversationDocument, { id: created.id }, { token: alice.accessToken })).conversation;
    expect(still?.title).toBe('secret');
  });
});

describe('paging', () => {
  it('pages conversations newest first, forwards and backwards, exactly at page boundaries', async () => {
    const user = await registerUser(t);
    const titles: string[] = [];
    for (let i = 1; i <= 7; i += 1) {
      titles.push(`c${i}`);
      expectData(await t.execute(CreateConversationDocument, { input: { title: `c${i}` } }, { token: user.accessToken }));
    }
    const newestFirst = [...titles].reverse();
    const seen: string[] = [];
    let after: string | null | undefined;
    for (;;) {
      const page = expectData(await t.execute(MyConversationsDocument, { first: 3, after }, { token: user.accessToken })).me!.conversations;
      expect(page!.totalCount).toBe(7);
      seen.push(...page!.edges.map((e) => e.node.title));
      if (!page!.pageInfo.hasNextPage) break;
      after = page!.pageInfo.endCursor;
    }
    expect(seen).toEqual(newestFirst);

    const lastTwo = expectData(await t.execute(MyConversationsDocument, { last: 2 }, { token: user.accessToken })).me!.conversations;
    expect(lastTwo!.edges.map((e) => e.node.title)).toEqual(['c2', 'c1']);
    expect(lastTwo!.pageInfo.hasPreviousPage).toBe(true);
    const before = expectData(
      await t.execute(MyConversationsDocument, { last: 3, before: lastTwo!.pageInfo.startCursor }, { token: user.accessToken }),
    ).me!.conversations;
    expect(before!.edges.map((e) => e.node.title)).toEqual(['c5', 'c4', 'c3']);
  });

  it('pages messages oldest first; last: n gives the latest n', async () => {
    const user = await registerUser(t);
    let conversationId: string | undefined;
    const contents: string[] = [];
    for (let i = 1; i <= 3; i += 1) {
      const prompt = upstream.prompt({ content: `reply ${i}` }, undefined, `question ${i}`);
      const sent = expectData(
        await t.execute(SendMessageDocument, { input: { conversationId, content: prompt, stream: false } }, { token: user.accessToken }),
      ).sendMessage;
      conversationId = sent.conversation.id;
      contents.push(prompt, `reply ${i}`);
    }
    const all = expectData(await t.execute(ConversationDocument, { id: conversationId!, first: 100 }, { token: user.accessToken })).conversation!;
    expect(all.messageCount).toBe(6);
    expect(all.messages!.edges.map((e) => e.node.content)).toEqual(contents);
    expect(all.messages!.edges.map((e) => e.node.role)).toEqual(['USER', 'ASSISTANT', 'USER', 'ASSISTANT', 'USER', 'ASSISTANT']);

    const first = expectData(await t.execute(ConversationDocument, { id: conversationId!, first: 2 }, { token: user.accessToken })).conversation!;
    const next = expectData(
      await t.execute(ConversationDocument, { id: conversationId!, first: 2, after: first.messages!.pageInfo.endCursor }, { token: user.accessToken }),
    ).conversation!;
    expect(next.messages!.edges.map((e) => e.node.content)).toEqual(contents.slice(2, 4));
    expect(next.messages!.pageInfo.hasNextPage).toBe(true);

    const latest = expectData(await t.execute(ConversationDocument, { id: conversationId!, last: 2 }, { token: user.accessToken })).conversation!;
    expect(latest.messages!.edges.map((e) => e.node.content)).toEqual(contents.slice(4));
    const earlier = expectData(
      await t.execute(ConversationDocument, { id: conversationId!, last: 4, before: latest.messages!.pageInfo.startCursor }, { token: user.accessToken }),
    ).conversation!;
    expect(earlier.messages!.edges.map((e) => e.node.content)).toEqual(contents.slice(0, 4));
    expect(earlier.messages!.pageInfo.hasPreviousPage).toBe(false);
  });

  it('clamps page sizes to 100', async () => {
    const user = await registerUser(t);
    const { id: userId } = await t.app.db.prisma.user.findUniqueOrThrow({ where: { email: user.email } });
    await t.app.db.prisma.conversation.createMany({
      data: Array.from({ length: 105 }, (_, i) => ({ userId, title: `bulk ${i}`, model: 'gpt-4o-mini' })),
    });
    const page = expectData(await t.execute(MyConversationsDocument, { first: 500 }, { token: user.accessToken })).me!.conversations;
    expect(page!.edges).toHaveLength(100);
    expect(page!.pageInfo.hasNextPage).toBe(true);
    expect(page!.totalCount).toBe(105);
  });
});
