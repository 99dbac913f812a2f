import { subscribe } from '@graphql-tools/executor';
import {
  GraphQLBoolean,
  GraphQLID,
  GraphQLInt,
  GraphQLNonNull,
  GraphQLObjectType,
  GraphQLSchema,
  GraphQLString,
  parse,
  print,
  type FormattedExecutionResult,
} from 'graphql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeGlobalId, encodeGlobalId } from '../src/global-id.js';
import { eventBuilderFor, subscribeBuildingEvents } from '../src/graphql/stream-event-shortcut.js';
import type { StreamEvent } from '../src/streams/stream-hub.js';
import { registerUser } from './helpers/accounts.js';
import { expectData, startTestApp, type TestApp } from './helpers/app.js';
import { CreateScopedApiKeyDocument } from './helpers/api-key-documents.js';
import { MessageStreamDocument } from './helpers/chat-documents.js';
import { connectWs } from './helpers/ws.js';

type Result = FormattedExecutionResult<Record<string, unknown>, unknown>;

let t: TestApp;
let url: URL;
beforeAll(async () => {
  t = await startTestApp();
  url = await t.app.start(0);
});
afterAll(() => t.stop());

/** Every field an event carries, under aliases, in fragments, with tool-call pieces. */
const CARRIED = `subscription ($messageId: ID!) {
  stream: messageStream(messageId: $messageId) {
    __typename
    seq
    text: delta
    ...More
    ... on MessageStreamEvent { reset firstSeq }
    toolCallDeltas { index id name argumentsDelta __typename }
    messageId
  }
}
fragment More on MessageStreamEvent { done seq }`;
/** What clients ask for: the event's fields, and on the final one the message and its usage. */
const WITH_MESSAGE = print(MessageStreamDocument);
/** The same selection, which a directive keeps on the executor for every event. */
const throughExecutor = (query: string) => query.replace(' seq', ' seq @include(if: true)');

const EVENTS: Omit<StreamEvent, 'messageId'>[] = [
  { seq: 1, delta: 'Hello', done: false, offset: 0 },
  { seq: 2, delta: ', wor', done: false, offset: 5, toolCallDeltas: [{ index: 0, id: 'call_1', name: 'lookup', argumentsDelta: '{"q"' }] },
  { seq: 3, delta: '', done: false, offset: 10, firstSeq: 2, toolCallDeltas: [{ index: 0, argumentsDelta: ':1}' }] },
  { seq: 4, delta: 'Again', done: false, offset: 0, reset: true },
  { seq: 5, delta: ' and on', done: false, offset: 5 },
];
const REPLY = 'Again and on';

/** An assistant message of `userId` whose stream this instance publishes. */
async function streamingMessage(userId: string): Promise<string> {
  const prisma = t.app.db.prisma;
  const conversation = await prisma.conversation.create({ data: { userId, title: 'shortcut', model: 'gpt-4o-mini' } });
  const message = await prisma.message.create({ data: { conversationId: conversation.id, userId, role: 'ASSISTANT', content: '', status: 'STREAMING' } });
  t.app.hub.publishHere(message.id);
  return message.id;
}

/** Publishes EVENTS, then makes the message final and publishes its `done`. */
async function publishReply(messageId: string): Promise<void> {
  for (const event of EVENTS) await t.app.hub.publish({ messageId, ...event });
  await t.app.db.prisma.message.update({
    where: { id: messageId },
    data: { content: REPLY, status: 'COMPLETE', promptTokens: 3, completionTokens: 4, totalTokens: 7, finishReason: 'stop' },
  });
  await t.app.hub.publish({ messageId, seq: EVENTS.length + 1, delta: '', done: true, offset: REPLY.length });
}

/** Every result one subscription gets, until it completes. */
function follow(client: ReturnType<typeof connectWs>, query: string, messageId: string): Promise<Result[]> {
  const results: Result[] = [];
  return new Promise((resolve, reject) => {
    client.subscribe(
      { query, variables: { messageId: encodeGlobalId('Message', messageId) } },
      { next: (result) => void results.push(result), error: reject, complete: () => resolve(results) },
    );
  });
}

describe('stream events built without the executor', () => {
  it('applies to selections of what an event carries, not to those a directive could change', () => {
    expect(eventBuilderFor(parse(CARRIED))).toBeDefined();
    expect(eventBuilderFor(parse(WITH_MESSAGE))).toBeDefined();
    expect(eventBuilderFor(parse(throughExecutor(CARRIED)))).toBeUndefined();
    expect(eventBuilderFor(parse(throughExecutor(WITH_MESSAGE)))).toBeUndefined();
    expect(eventBuilderFor(parse('subscription ($id: ID!) { messageStream(messageId: $id) { seq unknownField } }'))).toBeUndefined();
    expect(eventBuilderFor(parse('query { me { id } }'))).toBeUndefined();
  });

  it('gives exactly what the executor gives, the final message included', async () => {
    const user = await registerUser(t);
    const messageId = await streamingMessage(decodeGlobalId(user.user.id).id);
    const client = connectWs(url, user.accessToken);
    const followed = [CARRIED, throughExecutor(CARRIED), WITH_MESSAGE, throughExecutor(WITH_MESSAGE)].map((query) => follow(client, query, messageId));
    await publishReply(messageId);
    const [carried, carriedExecuted, withMessage = [], withMessageExecuted] = await Promise.all(followed);

    expect(carried).toHaveLength(EVENTS.length + 1);
    expect(JSON.stringify(carried)).toBe(JSON.stringify(carriedExecuted));
    expect(JSON.stringify(withMessage)).toBe(JSON.stringify(withMessageExecuted));
    const events = withMessage.map((result) => (result.data as { messageStream: { reset: boolean; delta: string; message: unknown } }).messageStream);
    expect(events.slice(events.findLastIndex((e) => e.reset)).map((e) => e.delta).join('')).toBe(REPLY);
    expect(events.at(-1)?.message).toMatchObject({ status: 'COMPLETE', content: REPLY });
    expect(events.slice(0, -1).every((e) => e.message === null)).toBe(true);
  });

  it('refuses a caller that may not read events when it subscribes', async () => {
    const user = await registerUser(t);
    const { secret } = expectData(
      await t.execute(CreateScopedApiKeyDocument, { input: { name: 'chat only', scopes: ['CHAT'] } }, { token: user.accessToken }),
    ).createApiKey;
    const messageId = await streamingMessage(decodeGlobalId(user.user.id).id);
    const followed = follow(connectWs(url, secret), CARRIED, messageId);
    await publishReply(messageId);
    const results = await followed;

    expect(results).toHaveLength(1);
    expect(results[0]?.data).toBeUndefined();
    expect(results[0]?.errors?.map((error) => error.extensions?.code)).toEqual(['FORBIDDEN']);
  });

  it('still refuses on subscribe a selection over the cost limit, though its events could be built', async () => {
    const user = await registerUser(t);
    const messageId = await streamingMessage(decodeGlobalId(user.user.id).id);
    const page = 'messages(first: 100) { edges { node { id conversation { messages(first: 100) { edges { node { id } } } } } } }';
    const costly = `subscription ($messageId: ID!) { messageStream(messageId: $messageId) { seq delta done message { conversation { ${page} } } } }`;
    expect(eventBuilderFor(parse(costly))).toBeDefined();
    const followed = follow(connectWs(url, user.accessToken), costly, messageId);
    await publishReply(messageId);
    const results = await followed;

    expect(results).toHaveLength(1);
    expect(results[0]?.errors?.map((error) => [error.extensions?.code, error.extensions?.limit])).toEqual([['BAD_USER_INPUT', 'cost']]);
  });

  it('keeps refusing the events after the first when the executor refused it', async () => {
    // A field that refuses this caller on every event: after a refused first event, none may be built.
    const Event = new GraphQLObjectType<StreamEvent, { mayRead: boolean }>({
      name: 'MessageStreamEvent',
      fields: {
        seq: { type: new GraphQLNonNull(GraphQLInt), resolve: (e, _args, ctx) => (ctx.mayRead ? e.seq : new Error('Not allowed to read this')) },
        delta: { type: new GraphQLNonNull(GraphQLString) },
        done: { type: new GraphQLNonNull(GraphQLBoolean) },
      },
    });
    const schema = new GraphQLSchema({
      query: new GraphQLObjectType({ name: 'Query', fields: { ok: { type: GraphQLBoolean } } }),
      subscription: new GraphQLObjectType({
        name: 'Subscription',
        fields: {
          messageStream: {
            type: new GraphQLNonNull(Event),
            args: { messageId: { type: new GraphQLNonNull(GraphQLID) } },
            subscribe: async function* () {
              for (const event of EVENTS) yield { messageId: 'm', ...event };
              yield { messageId: 'm', seq: EVENTS.length + 1, delta: '', done: true };
            },
            resolve: (event: StreamEvent) => event,
          },
        },
      }),
    });
    const document = parse('subscription { messageStream(messageId: "m") { seq delta done } }');
    const resultsOf = async (subscription: unknown) => {
      const results: unknown[] = [];
      for await (const result of subscription as AsyncIterable<unknown>) results.push(result);
      return JSON.stringify(results);
    };
    for (const mayRead of [false, true]) {
      const args = { schema, document, contextValue: { mayRead } };
      const built = await resultsOf(await subscribeBuildingEvents(args, eventBuilderFor(document)!));
      expect(built).toBe(await resultsOf(await subscribe(args)));
      expect(built.includes('Not allowed to read this')).toBe(!mayRead);
    }
  });
});
