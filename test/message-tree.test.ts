import { describe, expect, it } from 'vitest';
import { graphql } from './generated/gql.js';
import { registerUser } from './helpers/accounts.js';
import { errorCodes, expectData, startWithUpstreamForFile, type TestApp } from './helpers/app.js';
import { DeleteConversationDocument, SendMessageDocument } from './helpers/chat-documents.js';
import { CreateScopedApiKeyDocument } from './helpers/api-key-documents.js';
import { MockUpstream } from './helpers/upstream.js';

const RegenerateDocument = graphql(`
  mutation Regenerate($input: RegenerateMessageInput!) {
    regenerateMessage(input: $input) {
      conversation {
        id
        messageCount
      }
      userMessage {
        id
        content
      }
      assistantMessage {
        id
        content
        status
        parent {
          id
        }
        alternatives {
          id
          content
        }
      }
    }
  }
`);

const EditDocument = graphql(`
  mutation Edit($input: EditMessageInput!) {
    editMessage(input: $input) {
      userMessage {
        id
        content
        alternatives {
          id
          content
        }
      }
      assistantMessage {
        id
        content
        status
      }
    }
  }
`);

const SelectBranchDocument = graphql(`
  mutation SelectBranch($messageId: ID!) {
    selectBranch(messageId: $messageId) {
      id
      messageCount
    }
  }
`);

const BranchDocument = graphql(`
  query Branch($id: ID!) {
    conversation(id: $id) {
      messageCount
      messages(first: 50) {
        totalCount
        edges {
          node {
            id
            role
            content
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

const UsageDocument = graphql(`
  query TreeUsage {
    me {
      usage {
        totals {
          totalTokens
          requests
        }
      }
    }
  }
`);

type Role = 'system' | 'user' | 'assistant';

describe('regenerate and edit, as a message tree', () => {
  let upstream: MockUpstream;
  let t: TestApp;
  startWithUpstreamForFile((app, mock) => {
    t = app;
    upstream = mock;
  });

  async function send(token: string, content: string, conversationId?: string) {
    return expectData(await t.execute(SendMessageDocument, { input: { content, conversationId, stream: false } }, { token })).sendMessage;
  }

  /** What the provider was sent, as role and text, for the nth request (from 0) of a prompt. */
  function sentFor(prompt: string, nth = 0): Array<[Role, string]> {
    const request = upstream.requestsFor(prompt)[nth];
    expect(request, `request ${nth} for ${prompt}`).toBeDefined();
    return request!.messages.map((m) => [m.role as Role, m.content as string]);
  }

  async function branch(token: string, conversationId: string) {
    const data = expectData(await t.execute(BranchDocument, { id: conversationId }, { token }));
    return data.conversation!;
  }

  const contents = (b: Awaited<ReturnType<typeof branch>>) => b.messages!.edges.map((e) => e.node.content);

  it('regenerates a reply beside the first: the provider sees only the question, and the next message continues the new branch', async () => {
    const user = await registerUser(t);
    const question = upstream.promptSequence([{ response: { content: 'first answer' } }, { response: { content: 'second answer' } }]);
    const first = await send(user.accessToken, question);
    const conversationId = first.conversation.id;

    const regenerated = expectData(
      await t.execute(RegenerateDocument, { input: { messageId: first.assistantMessage.id, stream: false } }, { token: user.accessToken }),
    ).regenerateMessage;
    expect(regenerated.assistantMessage).toMatchObject({ content: 'second answer', status: 'COMPLETE', parent: { id: first.userMessage.id } });
    expect(regenerated.userMessage).toEqual({ id: first.userMessage.id, content: question });
    expect(regenerated.assistantMessage.alternatives.map((m) => m.content)).toEqual(['first answer', 'second answer']);
    expect(regenerated.conversation.messageCount).toBe(2);
    // The regenerated reply was asked for without the reply it replaces.
    expect(sentFor(question, 1)).toEqual([['user', question]]);

    const current = await branch(user.accessToken, conversationId);
    expect(contents(current)).toEqual([question, 'second answer']);
    expect(current.messages!.totalCount).toBe(2);

    const next = upstream.prompt({ content: 'continued' }, undefined, 'next');
    await send(user.accessToken, next, conversationId);
    expect(sentFor(next)).toEqual([
      ['user', question],
      ['assistant', 'second answer'],
      ['user', next],
    ]);
  });

  it('asks for a regenerated reply as the one it replaces was asked for: sampling, output cap and response format', async () => {
    const user = await registerUser(t);
    const question = upstream.promptSequence([{ response: { content: '{"a":1}' } }, { response: { content: '{"a":2}' } }]);
    const responseFormat = { type: 'JSON_SCHEMA' as const, name: 'a', schema: { type: 'object', properties: { a: { type: 'integer' } } }, strict: true };
    const asked = { temperature: 0.3, topP: 0.5, stop: ['END'], seed: 7, maxTokens: 50, responseFormat };
    const first = expectData(await t.execute(SendMessageDocument, { input: { content: question, stream: false, ...asked } }, { token: user.accessToken }))
      .sendMessage;
    expectData(await t.execute(RegenerateDocument, { input: { messageId: first.assistantMessage.id, stream: false } }, { token: user.accessToken }));
    const [original, regenerated] = upstream.requestsFor(question) as unknown as Array<Record<string, unknown>>;
    const sampled = { temperature: 0.3, top_p: 0.5, stop: ['END'], seed: 7, max_tokens: 50 };
    expect(original).toMatchObject(sampled);
    expect(regenerated).toMatchObject({ ...sampled, response_format: original!.response_format });
    expect(regenerated!.response_format).toMatchObject({ type: 'json_schema' });
  });

  it('selectBranch brings an earlier reply back: the messages and the next call follow it', async () => {
    const user = await registerUser(t);
    const question = upstream.promptSequence([{ response: { content: 'kept answer' } }, { response: { content: 'other answer' } }]);
    const first = await send(user.accessToken, question);
    const conversationId = first.conversation.id;
    expectData(await t.execute(RegenerateDocument, { input: { messageId: first.assistantMessage.id, stream: false } }, { token: user.accessToken }));

    const selected = expectData(await t.execute(SelectBranchDocument, { messageId: first.assistantMessage.id }, { token: user.accessToken }));
    expect(selected.selectBranch).toEqual({ id: conversationId, messageCount: 2 });
    expect(contents(await branch(user.accessToken, conversationId))).toEqual([question, 'kept answer']);

    const next = upstream.prompt({ content: 'after the kept answer' }, undefined, 'next');
    await send(user.accessToken, next, conversationId);
    expect(sentFor(next)).toEqual([
      ['user', question],
      ['assistant', 'kept answer'],
      ['user', next],
    ]);
  });

  it('edits a question into a new branch with its reply; selecting the old question goes back to its newest reply', async () => {
    const user = await registerUser(t);
    const opening = upstream.prompt({ content: 'opening answer' }, undefined, 'opening');
    const first = await send(user.accessToken, opening);
    const conversationId = first.conversation.id;
    const question = upstream.prompt({ content: 'original answer' }, undefined, 'question');
    const original = await send(user.accessToken, question, conversationId);
    const later = upstream.prompt({ content: 'later answer' }, undefined, 'later');
    await send(user.accessToken, later, conversationId);

    const edited = upstream.prompt({ content: 'edited answer' }, undefined, 'edited');
    const edit = expectData(
      await t.execute(EditDocument, { input: { messageId: original.userMessage.id, content: edited, stream: false } }, { token: user.accessToken }),
    ).editMessage;
    expect(edit.assistantMessage).toMatchObject({ content: 'edited answer', status: 'COMPLETE' });
    expect(edit.userMessage.alternatives.map((m) => m.content)).toEqual([question, edited]);
    // The history before the edited question, and not what followed the original.
    expect(sentFor(edited)).toEqual([
      ['user', opening],
      ['assistant', 'opening answer'],
      ['user', edited],
    ]);
    const afterEdit = await branch(user.accessToken, conversationId);
    expect(contents(afterEdit)).toEqual([opening, 'opening answer', edited, 'edited answer']);
    expect(afterEdit.messageCount).toBe(4);
    const editedNode = afterEdit.messages!.edges[2]!.node;
    expect(editedNode.parent?.id).toBe(first.assistantMessage.id);
    expect(editedNode.alternatives.map((m) => m.id)).toEqual([original.userMessage.id, edit.userMessage.id]);
    expect(afterEdit.messages!.edges[0]!.node.parent).toBeNull();

    // Back to the original question: its branch down to its newest message, the later exchange included.
    expectData(await t.execute(SelectBranchDocument, { messageId: original.userMessage.id }, { token: user.accessToken }));
    expect(contents(await branch(user.accessToken, conversationId))).toEqual([opening, 'opening answer', question, 'original answer', later, 'later answer']);
  });

  it('edits the first message into a second root', async () => {
    const user = await registerUser(t);
    const question = upstream.prompt({ content: 'root answer' }, undefined, 'root');
    const first = await send(user.accessToken, question);
    const edited = upstream.prompt({ content: 'new root answer' }, undefined, 'new-root');
    const edit = expectData(
      await t.execute(EditDocument, { input: { messageId: first.userMessage.id, content: edited, stream: false } }, { token: user.accessToken }),
    ).editMessage;
    expect(edit.userMessage.alternatives.map((m) => m.content)).toEqual([question, edited]);
    expect(sentFor(edited)).toEqual([['user', edited]]);
    expect(contents(await branch(user.accessToken, first.conversation.id))).toEqual([edited, 'new root answer']);
  });

  it('refuses what is not the caller’s, the wrong kind of message, and a key without the CHAT scope', async () => {
    const owner = await registerUser(t);
    const other = await registerUser(t);
    const question = upstream.prompt({ content: 'private answer' });
    const sent = await send(owner.accessToken, question);
    const reply = sent.assistantMessage.id;
    const asked = sent.userMessage.id;

    for (const result of [
      await t.execute(RegenerateDocument, { input: { messageId: reply, stream: false } }, { token: other.accessToken }),
      await t.execute(EditDocument, { input: { messageId: asked, content: 'hijack', stream: false } }, { token: other.accessToken }),
      await t.execute(SelectBranchDocument, { messageId: reply }, { token: other.accessToken }),
    ]) {
      expect(errorCodes(result)).toEqual(['NOT_FOUND']);
    }
    expect(errorCodes(await t.execute(RegenerateDocument, { input: { messageId: asked } }, { token: owner.accessToken }))).toEqual(['BAD_USER_INPUT']);
    expect(errorCodes(await t.execute(EditDocument, { input: { messageId: reply, content: 'no' } }, { token: owner.accessToken }))).toEqual([
      'BAD_USER_INPUT',
    ]);
    expect(errorCodes(await t.execute(EditDocument, { input: { messageId: asked, content: '   ' } }, { token: owner.accessToken }))).toEqual([
      'BAD_USER_INPUT',
    ]);

    const readOnly = expectData(await t.execute(CreateScopedApiKeyDocument, { input: { name: 'reader', scopes: ['READ'] } }, { token: owner.accessToken }))
      .createApiKey.secret;
    for (const result of [
      await t.execute(RegenerateDocument, { input: { messageId: reply } }, { token: readOnly }),
      await t.execute(EditDocument, { input: { messageId: asked, content: 'by key' } }, { token: readOnly }),
      await t.execute(SelectBranchDocument, { messageId: reply }, { token: readOnly }),
    ]) {
      expect(errorCodes(result)).toEqual(['FORBIDDEN']);
    }
    // Nothing changed: one question, one reply, and the provider asked once.
    expect(contents(await branch(owner.accessToken, sent.conversation.id))).toEqual([question, 'private answer']);
    expect(upstream.requestsFor(question)).toHaveLength(1);
  });

  it('deletes the whole tree with its conversation, and the usage of every branch stays', async () => {
    const user = await registerUser(t);
    const question = upstream.promptSequence([{ response: { content: 'one' } }, { response: { content: 'two' } }]);
    const first = await send(user.accessToken, question);
    expectData(await t.execute(RegenerateDocument, { input: { messageId: first.assistantMessage.id, stream: false } }, { token: user.accessToken }));
    const before = expectData(await t.execute(UsageDocument, {}, { token: user.accessToken })).me?.usage?.totals;
    expect(before?.requests).toBe(2);

    expectData(await t.execute(DeleteConversationDocument, { id: first.conversation.id }, { token: user.accessToken }));
    const { id: userId } = await t.app.db.prisma.user.findUniqueOrThrow({ where: { email: user.email } });
    expect(await t.app.db.prisma.message.count({ where: { userId } })).toBe(0);
    expect(expectData(await t.execute(UsageDocument, {}, { token: user.accessToken })).me?.usage?.totals).toEqual(before);
  });
});
