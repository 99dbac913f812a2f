import { describe, expect, it } from 'vitest';
import { graphql } from './generated/gql.js';
import { registerUser } from './helpers/accounts.js';
import { errorCodes, expectData, startWithUpstreamForFile, type TestApp } from './helpers/app.js';
import { SendMessageDocument } from './helpers/chat-documents.js';
import { MockUpstream } from './helpers/upstream.js';

const ConversationsDocument = graphql(`
  query SearchConversations($search: String, $archived: Boolean) {
    me {
      conversations(first: 20, search: $search, archived: $archived) {
        totalCount
        edges {
          node {
            id
            title
            archived
          }
        }
      }
    }
  }
`);

const ArchiveDocument = graphql(`
  mutation ArchiveConversation($id: ID!, $archived: Boolean!) {
    archiveConversation(id: $id, archived: $archived) {
      id
      archived
    }
  }
`);

describe('conversation search and archive', () => {
  let upstream: MockUpstream;
  let t: TestApp;
  startWithUpstreamForFile((app, mock) => {
    t = app;
    upstream = mock;
  });

  async function converse(token: string, content: string, reply: string) {
    const prompt = `${content} ${crypto.randomUUID()}`;
    upstream.mock.on({ predicate: (req) => JSON.stringify(req.messages).includes(prompt) }, { content: reply });
    const sent = expectData(await t.execute(SendMessageDocument, { input: { content: prompt, stream: false } }, { token }));
    return sent.sendMessage.conversation.id;
  }

  const titles = async (token: string, variables: { search?: string; archived?: boolean }) => {
    const data = expectData(await t.execute(ConversationsDocument, variables, { token }));
    return { total: data.me!.conversations!.totalCount, titles: data.me!.conversations!.edges.map((e) => e.node.title) };
  };

  it('finds conversations by title or by the text of any message, in any case, and only the viewer’s own', async () => {
    const user = await registerUser(t);
    const other = await registerUser(t);
    await converse(user.accessToken, 'Plans for the Lighthouse trip', 'Pack a torch.');
    await converse(user.accessToken, 'Grocery list', 'Remember the LIGHTHOUSE biscuits.');
    await converse(user.accessToken, 'Unrelated', 'Nothing to see.');
    await converse(other.accessToken, 'Another lighthouse', 'Not yours.');

    const found = await titles(user.accessToken, { search: 'lightHouse' });
    expect(found.total).toBe(2);
    expect(found.titles.map((title) => title.split(' ').slice(0, 2).join(' ')).sort()).toEqual(['Grocery list', 'Plans for']);
    expect((await titles(user.accessToken, { search: 'torch' })).titles).toHaveLength(1);
    expect((await titles(user.accessToken, { search: 'nowhere-to-be-found' })).total).toBe(0);
    expect((await titles(user.accessToken, {})).total).toBe(3);
  });

  it('hides archived conversations from the list unless asked for, and brings them back', async () => {
    const user = await registerUser(t);
    const kept = await converse(user.accessToken, 'Kept', 'ok');
    const archived = await converse(user.accessToken, 'Archived', 'ok');
    expect(expectData(await t.execute(ArchiveDocument, { id: archived, archived: true }, { token: user.accessToken })).archiveConversation).toEqual({ id: archived, archived: true });

    const listed = expectData(await t.execute(ConversationsDocument, {}, { token: user.accessToken })).me!.conversations!;
    expect(listed.edges.map((e) => e.node.id)).toEqual([kept]);
    const archivedOnly = expectData(await t.execute(ConversationsDocument, { archived: true }, { token: user.accessToken })).me!.conversations!;
    expect(archivedOnly.edges.map((e) => e.node.id)).toEqual([archived]);

    expectData(await t.execute(ArchiveDocument, { id: archived, archived: false }, { token: user.accessToken }));
    expect((await titles(user.accessToken, {})).total).toBe(2);
  });

  it('refuses to archive another user’s conversation, and a search that is too long', async () => {
    const user = await registerUser(t);
    const other = await registerUser(t);
    const theirs = await converse(other.accessToken, 'Theirs', 'ok');
    expect(errorCodes(await t.execute(ArchiveDocument, { id: theirs, archived: true }, { token: user.accessToken }))).toEqual(['NOT_FOUND']);
    expect((await titles(other.accessToken, {})).total).toBe(1);
    expect(errorCodes(await t.execute(ConversationsDocument, { search: 'x'.repeat(201) }, { token: user.accessToken }))).toEqual(['BAD_USER_INPUT']);
  });
});
