import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MockUpstream } from './helpers/upstream.js';
import { executeRaw, expectData, startTestApp, type TestApp } from './helpers/app.js';
import { registerUser } from './helpers/accounts.js';
import { ConversationDocument, NestedConversationsDocument, SendMessageDocument } from './helpers/chat-documents.js';
import { encodeGlobalId } from '../src/global-id.js';
import { CreateApiKeyDocument } from './helpers/documents.js';
import { graphql } from './generated/gql.js';

const ConversationImagesDocument = graphql(`
  query ConversationImages {
    me {
      conversations(first: 50) {
        edges {
          node {
            messages(last: 20) {
              edges {
                node {
                  id
                  attachments {
                    id
                    mimeType
                    url
                  }
                }
              }
            }
          }
        }
      }
    }
  }
`);

let t: TestApp;
let statements: string[] = [];
beforeAll(async () => {
  // Without the viewer cache, every request reads its viewer: the counts are those of a request
  // that authenticates (viewer-cache.test.ts counts the cached ones).
  t = await startTestApp({ AUTH_CACHE_TTL_MS: '0' }, { onQuery: (sql) => statements.push(sql) });
});
afterAll(() => t.stop());

async function userWithConversations(count: number) {
  const user = await registerUser(t);
  const { id: userId } = await t.app.db.prisma.user.findUniqueOrThrow({ where: { email: user.email } });
  for (let c = 0; c < count; c += 1) {
    const conversation = await t.app.db.prisma.conversation.create({ data: { userId, title: `c${c}`, model: 'm' } });
    await t.app.db.prisma.message.createMany({
      data: Array.from({ length: 3 }, (_, i) => ({
        conversationId: conversation.id,
        userId,
        role: i % 2 ? ('ASSISTANT' as const) : ('USER' as const),
        content: `m${i}`,
        status: 'COMPLETE' as const,
        totalTokens: 10,
      })),
    });
  }
  return user;
}

/** Gives every user message of the user's conversations two images: an https URL and an upload. */
async function withImages(email: string) {
  const messages = await t.app.db.prisma.message.findMany({ where: { user: { email }, role: 'USER' }, select: { id: true, userId: true } });
  await t.app.db.prisma.attachment.createMany({
    data: messages.flatMap((m) => [
      { messageId: m.id, userId: m.userId, position: 0, url: 'https://example.com/a.png' },
      { messageId: m.id, userId: m.userId, position: 1, mimeType: 'image/gif', bytes: 3, data: new Uint8Array([0x47, 0x49, 0x46]) },
    ]),
  });
}

async function countStatements(token: string) {
  statements = [];
  const data = expectData(await t.execute(NestedConversationsDocument, {}, { token }));
  if (process.env.SHOW_SQL) console.log(statements.join("\n"));
  return { count: statements.length, data };
}

describe('nested reads', () => {
  it('use the same number of SQL statements for 5 and for 50 conversations', async () => {
    const few = await userWithConversations(5);
    const many = await userWithConversations(50);
    const small = await countStatements(few.accessToken);
    const large = await countStatements(many.accessToken);
    expect(small.data.me?.conversations?.edges).toHaveLength(5);
    expect(large.data.me?.conversations?.edges).toHaveLength(50);
    const node = large.data.me?.conversations?.edges[0]?.node;
    expect(node?.messageCount).toBe(3);
    expect(node?.usage?.totalTokens).toBe(10);
    expect(node?.messages?.edges).toHaveLength(3);
    expect(small.count).toBeGreaterThan(0);
    expect(large.count).toBe(small.count);
    // The viewer; the user with the page of conversations, their message counts and their last
    // messages, joined in the database; one usage aggregate.
    expect(large.count).toBe(3);
  });

  it('load the images of every message in the same number of SQL statements for 5 and for 50 conversations', async () => {
    const few = await userWithConversations(5);
    const many = await userWithConversations(50);
    await withImages(few.email);
    await withImages(many.email);
    const counts = [];
    for (const user of [few, many]) {
      statements = [];
      const data = expectData(await t.execute(ConversationImagesDocument, {}, { token: user.accessToken }));
      const images = data.me?.conversations?.edges.flatMap((e) => e.node.messages?.edges.flatMap((m) => m.node.attachments) ?? []);
      expect(images).toHaveLength(user === few ? 5 * 2 * 2 : 50 * 2 * 2);
      expect(images?.[1]).toMatchObject({ mimeType: 'image/gif', url: expect.stringMatching(/^\/attachments\//) });
      // Never the bytes of an upload.
      expect(statements.join('\n')).not.toContain('"data"');
      counts.push(statements.length);
    }
    expect(counts[1]).toBe(counts[0]);
  });

  it('answer { me { identity scalars } } from the row that authenticated the request: one statement, with a token or an API key; the plan takes one more', async () => {
    const user = await registerUser(t);
    const me = async (token: string, fields = 'id email name role active createdAt') => {
      const result = await executeRaw(t, { query: `{ me { ${fields} } }` }, { token });
      expect(result.errors).toBeUndefined();
      return (result.data?.me as { email: string }).email;
    };
    statements = [];
    expect(await me(user.accessToken)).toBe(user.email);
    expect(statements).toHaveLength(1);

    // With an API key, the key and its user are read together.
    const { secret } = expectData(await t.execute(CreateApiKeyDocument, { input: { name: 'k' } }, { token: user.accessToken })).createApiKey;
    await me(secret); // its first use records lastUsedAt
    statements = [];
    expect(await me(secret)).toBe(user.email);
    expect(statements).toHaveLength(1);

    // Billing state is never answered from the authenticating row (it may be a cached one).
    statements = [];
    expect(await me(user.accessToken, 'email plan')).toBe(user.email);
    expect(statements).toHaveLength(2);
  });

  it('read one page of a long conversation: the database returns that page and the columns asked for, not every message', async () => {
    const user = await registerUser(t);
    const { id: userId } = await t.app.db.prisma.user.findUniqueOrThrow({ where: { email: user.email } });
    const conversation = await t.app.db.prisma.conversation.create({ data: { userId, title: 'long', model: 'm' } });
    for (let i = 0; i < 300; i += 1) {
      // One at a time: ids are time-ordered, so the messages keep their order.
      await t.app.db.prisma.message.create({
        data: { conversationId: conversation.id, userId, role: 'USER', content: `m${i}`, status: 'COMPLETE' },
      });
    }
    const id = encodeGlobalId('Conversation', conversation.id);
    for (const [page, expected] of [
      [{ last: 3 }, ['m297', 'm298', 'm299']],
      [{ first: 3 }, ['m0', 'm1', 'm2']],
    ] as const) {
      statements = [];
      const data = expectData(await t.execute(ConversationDocument, { id, ...page }, { token: user.accessToken }));
      expect(data.conversation?.messages?.edges.map((edge) => edge.node.content)).toEqual(expected);
      const messageReads = statements.filter((sql) => sql.includes('"content"'));
      if (process.env.SHOW_SQL) console.log(messageReads.join('\n'));
      expect(messageReads.length).toBeGreaterThan(0);
      for (const sql of messageReads) {
        expect(sql).toMatch(/ORDER BY [^)]*"id" (ASC|DESC) LIMIT/);
        // Only the columns asked for (and the owner, for authorization): not the usage or the error.
        expect(sql).not.toMatch(/"(errorMessage|completionTokens|completedAt)"/);
      }
    }
  });
});

const TreeDocument = graphql(`
  query ConversationTree($id: ID!) {
    conversation(id: $id) {
      messages(first: 100) {
        edges {
          node {
            id
            parent {
              id
            }
            alternatives {
              id
            }
          }
        }
      }
    }
  }
`);

describe('the message tree', () => {
  /** A line of `length` question-and-reply pairs, each reply with a regenerated sibling off the current branch. */
  async function treeOf(length: number) {
    const user = await registerUser(t);
    const { id: userId } = await t.app.db.prisma.user.findUniqueOrThrow({ where: { email: user.email } });
    const conversation = await t.app.db.prisma.conversation.create({ data: { userId, title: 'tree', model: 'm' } });
    let parentId: string | null = null;
    for (let i = 0; i < length; i += 1) {
      const question: { id: string } = await t.app.db.prisma.message.create({
        data: { conversationId: conversation.id, userId, role: 'USER', content: `q${i}`, status: 'COMPLETE', parentId },
      });
      await t.app.db.prisma.message.create({
        data: { conversationId: conversation.id, userId, role: 'ASSISTANT', content: `old${i}`, status: 'COMPLETE', parentId: question.id, onCurrentBranch: false },
      });
      const reply: { id: string } = await t.app.db.prisma.message.create({
        data: { conversationId: conversation.id, userId, role: 'ASSISTANT', content: `a${i}`, status: 'COMPLETE', parentId: question.id },
      });
      parentId = reply.id;
    }
    return { user, id: encodeGlobalId('Conversation', conversation.id) };
  }

  it('reads parents and alternatives of a page of the current branch in the same number of statements for 5 and for 50 exchanges', async () => {
    const counts: number[] = [];
    for (const length of [5, 50]) {
      const { user, id } = await treeOf(length);
      statements = [];
      const data = expectData(await t.execute(TreeDocument, { id }, { token: user.accessToken }));
      if (process.env.SHOW_SQL) console.log(statements.join('\n'));
      const nodes = data.conversation?.messages?.edges.map((e) => e.node) ?? [];
      expect(nodes).toHaveLength(2 * length);
      expect(nodes[1]?.alternatives).toHaveLength(2);
      expect(nodes[1]?.parent?.id).toBe(nodes[0]?.id);
      counts.push(statements.length);
    }
    expect(counts[1]).toBe(counts[0]);
    // The viewer; the conversation with its page of messages and their parents, joined in the
    // database; one read of the siblings of the whole page.
    expect(counts[0]).toBe(3);
  });
});

describe('sending a message', () => {
  let upstream: MockUpstream;
  let app: TestApp;
  let sent: string[] = [];
  beforeAll(async () => {
    upstream = await MockUpstream.start();
    app = await startTestApp(upstream.env, { onQuery: (sql) => sent.push(sql) });
  });
  afterAll(async () => {
    await app?.stop();
    await upstream?.stop();
  });

  it('answers with the rows it wrote: authentication, one statement and the count, nothing read back', async () => {
    const user = await registerUser(app);
    // Slow enough that the reply has not finished (and written anything) when sendMessage answers.
    const prompt = upstream.prompt({ content: 'a reply still streaming' }, { chunkSize: 2, latency: 200 });
    sent = [];
    const data = expectData(await app.execute(SendMessageDocument, { input: { content: prompt } }, { token: user.accessToken }));
    const statements = [...sent];
    expect(data.sendMessage.assistantMessage.status).toBe('STREAMING');
    expect(data.sendMessage.userMessage.content).toBe(prompt);
    if (process.env.SHOW_SQL) console.log(statements.join('\n'));
    // The viewer, chat_send_message, and the conversation's messageCount.
    expect(statements).toHaveLength(3);
  });
});

