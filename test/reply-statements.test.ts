import { print } from 'graphql';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startTestApp, expectData, type TestApp } from './helpers/app.js';
import { MockUpstream } from './helpers/upstream.js';
import { registerUser } from './helpers/accounts.js';
import { connectWs } from './helpers/ws.js';
import { graphql } from './generated/gql.js';

// What a chat app asks for on the hot path: the reply's id, then its text as it streams.
const SendDocument = graphql(`
  mutation SendForStatements($input: SendMessageInput!) {
    sendMessage(input: $input) {
      assistantMessage {
        id
      }
    }
  }
`);
const SendInConversationDocument = graphql(`
  mutation SendInConversationForStatements($input: SendMessageInput!) {
    sendMessage(input: $input) {
      conversation {
        id
      }
      assistantMessage {
        id
      }
    }
  }
`);
const StreamDocument = graphql(`
  subscription StreamForStatements($messageId: ID!) {
    messageStream(messageId: $messageId) {
      seq
      delta
      done
    }
  }
`);

let t: TestApp;
let url: URL;
let upstream: MockUpstream;
let statements: string[] = [];
beforeAll(async () => {
  upstream = await MockUpstream.start();
  t = await startTestApp({ ...upstream.env }, { onQuery: (sql) => statements.push(sql) });
  url = await t.app.start(0);
});
afterAll(() => t.stop());

it('a streamed reply, followed by its sender on the instance that runs it, takes one statement to start and one to end', async () => {
  const user = await registerUser(t);
  const reply = 'Streamed in pieces, one statement at each end.';
  const prompt = upstream.prompt({ content: reply }, { chunkSize: 4, latency: 15 });
  const client = connectWs(url, user.accessToken);
  const streamReply = async () => {
    const sent = expectData(await t.execute(SendDocument, { input: { content: prompt, model: 'gpt-4o-mini' } }, { token: user.accessToken }));
    let text = '';
    for await (const result of client.iterate({ query: print(StreamDocument), variables: { messageId: sent.sendMessage.assistantMessage.id } })) {
      const event = (result.data as { messageStream: { delta: string; done: boolean } }).messageStream;
      text += event.delta;
      if (event.done) break;
    }
    return text;
  };
  try {
    // The first reply opens the socket and authenticates it; the viewer is then cached.
    await streamReply();
    statements = [];
    const text = await streamReply();
    expect(text).toBe(reply);
    if (process.env.SHOW_SQL) console.log(statements.join('\n---\n'));
    // The send (user, conversation, messages and reservation), then the end (the message, its
    // attempts and the settlement): no read to check who may follow the stream, or to start it.
    expect(statements.map((sql) => sql.match(/"(chat_send_message|generation_record_final)"/)?.[1] ?? sql.slice(0, 80))).toEqual([
      'chat_send_message',
      'generation_record_final',
    ]);
  } finally {
    await client.dispose();
  }
});

it('keeps the attempts of a reply, written by the statement that records its end', async () => {
  const user = await registerUser(t);
  const prompt = upstream.prompt({ content: 'counted', usage: { prompt_tokens: 11, completion_tokens: 3 } });
  const sent = expectData(
    await t.execute(SendDocument, { input: { content: prompt, model: 'gpt-4o-mini', stream: false } }, { token: user.accessToken }),
  );
  const attempts = await t.app.db.prisma.messageAttempt.findMany({ where: { message: { conversation: { user: { email: user.email } } } } });
  expect(sent.sendMessage.assistantMessage.id).toBeTruthy();
  expect(attempts).toMatchObject([{ position: 0, outcome: 'OK', promptTokens: 11, completionTokens: 3, billed: true }]);
  expect(attempts[0]!.startedAt.getTime()).toBeGreaterThan(Date.now() - 60_000);
  expect(attempts[0]!.startedAt.getTime()).toBeLessThanOrEqual(Date.now());
});

it('a message in a conversation with images reads the conversation, its branch and their images in one statement before the send', async () => {
  const user = await registerUser(t);
  const first = upstream.prompt({ content: 'I see a cat.' });
  const sent = expectData(
    await t.execute(
      SendInConversationDocument,
      { input: { content: first, model: 'gpt-4o-mini', stream: false, attachments: [{ imageUrl: 'https://example.com/cat.png' }] } },
      { token: user.accessToken },
    ),
  );
  const second = upstream.prompt({ content: 'Still a cat.' });
  statements = [];
  expectData(
    await t.execute(
      SendInConversationDocument,
      { input: { content: second, conversationId: sent.sendMessage.conversation.id, stream: false } },
      { token: user.accessToken },
    ),
  );
  const beforeSend = statements.slice(0, statements.findIndex((sql) => sql.includes('"chat_send_message"')));
  if (process.env.SHOW_SQL) console.log(beforeSend.join('\n---\n'));
  expect(beforeSend).toHaveLength(1);
  // The earlier image went to the provider again, from the references read with the history.
  expect(JSON.stringify(upstream.requestsFor(second))).toContain('https://example.com/cat.png');
});
